-- Refunds: money paid back to a citizen, from a payment, through the
-- payment's own channel. A refund's status only moves forward:
-- requested -> approved -> submitted -> succeeded | failed, or
-- requested -> rejected. A gateway refund is sent to the provider at most
-- once: the process that moves it from approved to submitted (with its
-- provider request id) is the only one that sends it, and what the
-- provider answers is only ever asked about afterwards, never sent again.
CREATE TABLE refunds (
    id                 TEXT PRIMARY KEY,
    payment_id         TEXT NOT NULL REFERENCES payments (id),
    -- The payment's agency (NULL when the payment named none).
    agency_code        TEXT REFERENCES agencies (code),
    channel            TEXT NOT NULL,
    amount             BIGINT NOT NULL CHECK (amount > 0),
    reason             TEXT NOT NULL,
    -- The exception the refund settles, if it came from one.
    exception_id       TEXT REFERENCES payment_exceptions (id),
    status             TEXT NOT NULL CHECK (status IN
        ('requested', 'approved', 'rejected', 'submitted', 'succeeded', 'failed')),
    requested_by       TEXT NOT NULL,
    requested_at       TEXT NOT NULL,
    -- Who approved or rejected it, when and why.
    decided_by         TEXT,
    decided_at         TEXT,
    decision_note      TEXT,
    -- The id lephi named the refund by at the provider, made when it was
    -- submitted; unique, so that no two submissions share one.
    request_id         TEXT UNIQUE,
    submitted_at       TEXT,
    -- What the provider last answered.
    provider_refund_id TEXT,
    provider_code      TEXT,
    provider_message   TEXT,
    -- How the money went back by hand: the bank's reference of the
    -- transfer back, or the counter's receipt number.
    reference          TEXT,
    completed_by       TEXT,
    completed_at       TEXT,
    -- When the janitor next asks the provider about a submitted refund.
    next_check_at      TEXT,
    checks             BIGINT NOT NULL DEFAULT 0,
    updated_at         TEXT NOT NULL
);
CREATE INDEX refunds_by_payment ON refunds (payment_id);
CREATE INDEX refunds_by_agency ON refunds (agency_code, id);
CREATE INDEX refunds_due ON refunds (next_check_at) WHERE status IN ('approved', 'submitted');
