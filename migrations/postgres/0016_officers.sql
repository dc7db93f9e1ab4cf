-- Officers: the people who sign in to the finance console, each with a
-- password (Argon2id) and a second factor (TOTP, RFC 6238). API keys stay
-- for machine clients.
CREATE TABLE officers (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE,
    name                TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('finance', 'approver', 'admin')),
    -- The agency whose subtree the officer works on; NULL for the whole
    -- service (an admin only).
    agency_code         TEXT REFERENCES agencies (code),
    password_hash       TEXT NOT NULL,
    password_changed_at TEXT NOT NULL,
    -- The second factor's secret (base32), once enrolment began; confirmed
    -- when a first code from it was given; the time step of the last code
    -- accepted, which no code may repeat.
    totp_secret         TEXT,
    totp_confirmed_at   TEXT,
    totp_last_step      BIGINT,
    -- Failed sign-ins in a row, and until when sign-in is refused.
    failed_sign_ins     BIGINT NOT NULL DEFAULT 0,
    locked_until        TEXT,
    disabled_at         TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);

-- A session is an officer's or (on first run, before any officer) an
-- admin key's. Sessions are short-lived: the old ones end here.
DROP TABLE console_sessions;
CREATE TABLE console_sessions (
    token_hash   TEXT PRIMARY KEY,
    api_key_id   TEXT REFERENCES api_keys (id),
    officer_id   TEXT REFERENCES officers (id),
    -- 'enrolling': the password was right and the second factor is still
    -- to be set up; nothing else of the console opens.
    stage        TEXT NOT NULL DEFAULT 'signed_in' CHECK (stage IN ('signed_in', 'enrolling')),
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    CHECK ((api_key_id IS NULL) <> (officer_id IS NULL))
);
CREATE INDEX console_sessions_by_key ON console_sessions (api_key_id);
CREATE INDEX console_sessions_by_officer ON console_sessions (officer_id);
CREATE INDEX console_sessions_by_last_seen ON console_sessions (last_seen_at);

-- Who acted, as people read it: the officer's name and email, or the
-- key's name.
ALTER TABLE audit_log ADD COLUMN actor_name TEXT;

-- Idempotency records are kept per caller, a key or an officer.
ALTER TABLE idempotency_keys DROP CONSTRAINT IF EXISTS idempotency_keys_api_key_id_fkey;
