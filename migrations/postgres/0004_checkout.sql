-- Checkout: receipts numbered per agency and year, and the janitor's
-- checks of attempts still pending.

-- The last receipt number given in each agency's yearly series.
CREATE TABLE receipt_series (
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    year        BIGINT NOT NULL,
    last_number BIGINT NOT NULL,
    PRIMARY KEY (agency_code, year)
);

-- A paid invoice's receipt: its number in its agency's series for the
-- year (in Vietnam) it was paid, given once, in the payment's transaction.
CREATE TABLE receipts (
    invoice_id  TEXT PRIMARY KEY REFERENCES invoices (id),
    payment_id  TEXT NOT NULL REFERENCES payments (id),
    agency_code TEXT NOT NULL REFERENCES agencies (code),
    year        BIGINT NOT NULL,
    number      BIGINT NOT NULL CHECK (number BETWEEN 1 AND 9999999),
    form_number TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    issued_at   TEXT NOT NULL,
    UNIQUE (agency_code, year, number)
);

-- The janitor asks providers about attempts still pending: how often it
-- has, and when it may next (a claim pushes this past its lease).
ALTER TABLE payment_attempts ADD COLUMN checks BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payment_attempts ADD COLUMN next_check_at TEXT;
CREATE INDEX payment_attempts_to_check ON payment_attempts (next_check_at) WHERE status = 'pending';
