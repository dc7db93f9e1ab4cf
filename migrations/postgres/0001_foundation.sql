-- Agencies, API keys, invoices, idempotency keys and the audit log.
-- Amounts are whole đồng (BIGINT); times are UTC text of fixed
-- width ('2026-11-28T06:03:57.123456Z') so that text order is time order.

CREATE TABLE agencies (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('province', 'district', 'commune')),
    parent_code TEXT REFERENCES agencies (code),
    -- '/ROOT/CHILD/': an agency's subtree is every path it prefixes.
    path        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('agency_system', 'finance', 'admin')),
    -- NULL only for an admin key over every agency.
    agency_code TEXT REFERENCES agencies (code),
    key_hash    TEXT NOT NULL UNIQUE,
    key_prefix  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

CREATE TABLE invoices (
    id              TEXT PRIMARY KEY,
    payment_code    TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL CHECK (status IN ('open', 'paid', 'cancelled', 'expired')),
    total           BIGINT NOT NULL CHECK (total > 0),
    amount_paid     BIGINT NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
    agency_code     TEXT NOT NULL REFERENCES agencies (code),
    dossier_code    TEXT NOT NULL,
    procedure_code  TEXT NOT NULL,
    procedure_name  TEXT NOT NULL,
    payer_name      TEXT NOT NULL,
    payer_id_number TEXT,
    payer_phone     TEXT,
    payer_email     TEXT,
    lines           TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- A dossier has at most one open invoice.
CREATE UNIQUE INDEX invoices_one_open_per_dossier
    ON invoices (agency_code, dossier_code) WHERE status = 'open';
CREATE INDEX invoices_by_agency ON invoices (agency_code, id);
CREATE INDEX invoices_by_dossier ON invoices (dossier_code);
CREATE INDEX invoices_open_by_expiry ON invoices (expires_at) WHERE status = 'open';

CREATE TABLE idempotency_keys (
    api_key_id      TEXT NOT NULL REFERENCES api_keys (id),
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    status_code     BIGINT NOT NULL,
    response_body   TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (api_key_id, idempotency_key)
);

CREATE TABLE audit_log (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    object_type  TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    agency_code  TEXT,
    -- The agency's path when the record was written, for scoped reading.
    agency_path  TEXT,
    before_state TEXT,
    after_state  TEXT,
    request_id   TEXT
);
CREATE INDEX audit_log_by_object ON audit_log (object_type, object_id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are never changed or deleted';
END;
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
