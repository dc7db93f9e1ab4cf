-- Money beyond what an invoice owed, and refunds of money that paid one.
--
-- A payment applied to its invoice (exception_kind NULL) may bring more
-- than the invoice still owed: a bank transfer over the total pays it and
-- the excess is held for refund. amount_held is that excess; the invoice
-- counts amount - amount_held. A held payment (exception_kind set) holds
-- its whole amount and keeps amount_held 0.
ALTER TABLE payments ADD COLUMN amount_held BIGINT NOT NULL DEFAULT 0;

-- Of a refund, the part that came out of money applied to the invoice
-- (a payment's held part is refunded first). When it succeeds the
-- invoice counts that much less; reports count it as refunded.
ALTER TABLE refunds ADD COLUMN from_applied BIGINT NOT NULL DEFAULT 0;
