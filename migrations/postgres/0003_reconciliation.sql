-- Reconciliation: settlement statements and their lines, the dossier
-- register, officers' resolutions of exceptions, and the day (in Vietnam,
-- UTC+7) each payment was collected, by which reports group.

ALTER TABLE payments ADD COLUMN collected_on TEXT NOT NULL DEFAULT '';
-- As Payment::collected_at: the paid time, unless after the recorded one.
UPDATE payments SET collected_on = to_char(
    (CASE WHEN paid_at IS NOT NULL AND paid_at <= recorded_at THEN paid_at ELSE recorded_at END
        ::timestamptz AT TIME ZONE 'UTC') + interval '7 hours',
    'YYYY-MM-DD');

-- The procedure of the invoice a payment is for, by which reports group.
ALTER TABLE payments ADD COLUMN procedure_code TEXT;
UPDATE payments SET procedure_code =
    (SELECT i.procedure_code FROM invoices i WHERE i.id = payments.invoice_id);

-- Payments collected before a day that no statement settled.
CREATE INDEX payments_by_channel_day ON payments (channel, collected_on);
-- Reports read counted payments from this index alone.
CREATE INDEX payments_counted ON payments (collected_on, agency_code, channel, procedure_code, amount, id)
    WHERE exception_kind IS NULL;
CREATE INDEX invoices_by_procedure ON invoices (procedure_code, procedure_name);
-- Statement lines find payments by their order reference.
CREATE INDEX payments_by_reference ON payments (channel, reference);

-- An imported statement file; the same file (by its SHA-256) is imported
-- once per channel.
CREATE TABLE settlement_files (
    id          TEXT PRIMARY KEY,
    channel     TEXT NOT NULL CHECK (channel IN ('vnpay', 'momo', 'zalopay', 'bank_transfer')),
    profile     TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    -- The account a bank statement is of, when named.
    account_number TEXT,
    line_count  BIGINT NOT NULL DEFAULT 0,
    -- The import's summary (JSON), answered again for the same file.
    summary     TEXT,
    imported_at TEXT NOT NULL,
    imported_by TEXT NOT NULL,
    UNIQUE (channel, sha256)
);

CREATE TABLE settlement_lines (
    file_id          TEXT NOT NULL REFERENCES settlement_files (id),
    line_no          BIGINT NOT NULL,
    channel          TEXT NOT NULL,
    -- The provider's transaction id, or the bank's reference.
    txn_ref          TEXT NOT NULL,
    -- The order reference, or the transfer's description.
    reference        TEXT NOT NULL,
    amount           BIGINT NOT NULL,
    fee              BIGINT NOT NULL,
    transaction_time TEXT NOT NULL,
    -- The provider's settlement day, YYYY-MM-DD.
    settlement_date  TEXT NOT NULL,
    outcome          TEXT NOT NULL CHECK (outcome IN ('matched', 'amount_mismatch', 'missing_payment', 'duplicate_line')),
    payment_id       TEXT REFERENCES payments (id),
    agency_code      TEXT REFERENCES agencies (code),
    PRIMARY KEY (file_id, line_no)
);
-- A payment is settled by one line at most; any other line is a duplicate.
CREATE UNIQUE INDEX settlement_lines_settle_once ON settlement_lines (payment_id)
    WHERE outcome <> 'duplicate_line';
CREATE INDEX settlement_lines_by_txn ON settlement_lines (channel, txn_ref);
CREATE INDEX settlement_lines_by_date ON settlement_lines (channel, settlement_date);

ALTER TABLE payment_exceptions ADD COLUMN settlement_file_id TEXT REFERENCES settlement_files (id);
ALTER TABLE payment_exceptions ADD COLUMN settlement_line_no BIGINT;
ALTER TABLE payment_exceptions ADD COLUMN dossier_code TEXT;
-- The payment an officer matched the exception to.
ALTER TABLE payment_exceptions ADD COLUMN resolved_payment_id TEXT REFERENCES payments (id);
-- A standing finding about a payment is raised once, whatever its outcome.
CREATE UNIQUE INDEX payment_exceptions_one_finding ON payment_exceptions (kind, payment_id)
    WHERE kind IN ('unsettled_payment', 'unknown_dossier');
CREATE INDEX payment_exceptions_by_kind ON payment_exceptions (kind, status);

-- The dossier register: every dossier that owed a fee, as the dossier
-- systems list it. Re-importing a dossier updates its row.
CREATE TABLE dossiers (
    agency_code    TEXT NOT NULL REFERENCES agencies (code),
    dossier_code   TEXT NOT NULL,
    procedure_code TEXT NOT NULL,
    fee_amount     BIGINT NOT NULL CHECK (fee_amount > 0),
    received_at    TEXT NOT NULL,
    status         TEXT NOT NULL,
    imported_at    TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (agency_code, dossier_code)
);
CREATE INDEX dossiers_by_received ON dossiers (received_at);
CREATE INDEX invoices_by_agency_dossier ON invoices (agency_code, dossier_code);
