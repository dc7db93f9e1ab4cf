-- Fewer pages written per payment. Every entry added at a key of its own
-- dirties a page of its own, which the payment's commit writes out.

-- Reports find counted payments in this index by a range of days: keyed
-- by the day and then the payment's id (ordered by time), a new payment's
-- entry goes after the last one, on the page before it, instead of among
-- its agency's, channel's and procedure's entries of the day, on a page
-- of their own.
DROP INDEX payments_counted;
CREATE INDEX payments_counted ON payments (collected_on, id, agency_code, channel, procedure_code, amount)
    WHERE exception_kind IS NULL;

-- Events are listed by id (through their agency's path, not its code),
-- and found by agency only to release the held ones, which have an index
-- of their own (outbox_events_held): an entry per event at its agency's
-- key served nothing else.
DROP INDEX outbox_events_by_agency;
