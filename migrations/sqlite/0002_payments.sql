-- Payments: agencies' receiving accounts and webhooks, attempts to pay,
-- recorded payments, exceptions for officers, and the outbox of events
-- for the dossier systems.

CREATE TABLE agency_bank_accounts (
    agency_code    TEXT PRIMARY KEY REFERENCES agencies (code),
    bank_bin       TEXT NOT NULL,
    account_number TEXT NOT NULL,
    account_name   TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX agency_bank_accounts_by_number ON agency_bank_accounts (account_number);

CREATE TABLE agency_webhooks (
    agency_code TEXT PRIMARY KEY REFERENCES agencies (code),
    url         TEXT NOT NULL,
    -- The signing secret, needed in full to sign each delivery.
    secret      TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE payment_attempts (
    id            TEXT PRIMARY KEY,
    invoice_id    TEXT NOT NULL REFERENCES invoices (id),
    channel       TEXT NOT NULL CHECK (channel IN ('vnpay', 'momo', 'zalopay', 'bank_transfer')),
    -- The reference the provider names in its callback.
    order_ref     TEXT NOT NULL,
    amount        INTEGER NOT NULL CHECK (amount > 0),
    status        TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    pay_url       TEXT,
    provider_code TEXT,
    message       TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (channel, order_ref)
);
CREATE INDEX payment_attempts_by_invoice ON payment_attempts (invoice_id);
CREATE INDEX payment_attempts_pending ON payment_attempts (created_at) WHERE status = 'pending';

CREATE TABLE payments (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL CHECK (channel IN ('vnpay', 'momo', 'zalopay', 'bank_transfer', 'cash')),
    provider_txn_id TEXT NOT NULL,
    amount          INTEGER NOT NULL CHECK (amount > 0),
    -- NULL when nothing the provider named matches an invoice.
    invoice_id      TEXT REFERENCES invoices (id),
    attempt_id      TEXT REFERENCES payment_attempts (id),
    agency_code     TEXT REFERENCES agencies (code),
    -- What the provider named: an order reference or a transfer note.
    reference       TEXT NOT NULL,
    -- NULL when the amount was added to the invoice; otherwise why not.
    exception_kind  TEXT,
    source          TEXT NOT NULL,
    paid_at         TEXT,
    recorded_at     TEXT NOT NULL,
    recorded_by     TEXT NOT NULL,
    -- At most one payment per provider transaction.
    UNIQUE (channel, provider_txn_id)
);
CREATE INDEX payments_by_invoice ON payments (invoice_id);
CREATE INDEX payments_by_agency ON payments (agency_code, id);

CREATE TABLE payment_exceptions (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    payment_id      TEXT REFERENCES payments (id),
    invoice_id      TEXT REFERENCES invoices (id),
    agency_code     TEXT REFERENCES agencies (code),
    amount          INTEGER,
    detail          TEXT NOT NULL,
    opened_at       TEXT NOT NULL,
    resolved_at     TEXT,
    resolution      TEXT,
    resolution_note TEXT,
    resolved_by     TEXT
);
CREATE INDEX payment_exceptions_by_agency ON payment_exceptions (agency_code, id);
CREATE INDEX payment_exceptions_by_payment ON payment_exceptions (payment_id);

CREATE TABLE outbox_events (
    id              TEXT PRIMARY KEY,
    -- NULL when the event's agency is unknown: kept (held), never delivered.
    agency_code     TEXT REFERENCES agencies (code),
    type            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    -- held: its agency has no webhook yet; pending: to be delivered.
    status          TEXT NOT NULL CHECK (status IN ('held', 'pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- When the event may next be claimed: a claim pushes it past the
    -- delivery's lease, so no two dispatchers hold it at once.
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    delivered_at    TEXT
);
CREATE INDEX outbox_events_due ON outbox_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_events_held ON outbox_events (agency_code) WHERE status = 'held';
CREATE INDEX outbox_events_by_agency ON outbox_events (agency_code, id);
