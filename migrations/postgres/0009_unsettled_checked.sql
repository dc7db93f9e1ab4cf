-- What each statement's import checked for unsettled payments, so that the
-- next import of its channel need not read again every payment that one
-- found settled or raised: the agencies it saw (their path prefix), and
-- the day before which it checked every payment of theirs it could see.
-- NULL when it checked none, and for bank statements, whose latest day is
-- each agency's own and whose payments are checked in full each time.
ALTER TABLE settlement_files ADD COLUMN checked_scope TEXT;
ALTER TABLE settlement_files ADD COLUMN checked_before TEXT;
