-- The finance officers' web console: sessions. The browser holds a random
-- token; only its SHA-256 is stored, bound to the API key that signed in.
-- A session ends when it has been idle too long, when the officer signs
-- out, or when its key is revoked.
CREATE TABLE console_sessions (
    token_hash   TEXT PRIMARY KEY,
    api_key_id   TEXT NOT NULL REFERENCES api_keys (id),
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
);
CREATE INDEX console_sessions_by_key ON console_sessions (api_key_id);
CREATE INDEX console_sessions_by_last_seen ON console_sessions (last_seen_at);
