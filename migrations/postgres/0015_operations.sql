-- Where each audited request came from: the connection's peer, or behind
-- server.trusted_proxies the client they name.
ALTER TABLE audit_log ADD COLUMN client_addr TEXT;

-- A webhook secret being replaced keeps signing beside the new one until
-- previous_until, so that a dossier system can move over without missing
-- a delivery.
ALTER TABLE agency_webhooks ADD COLUMN previous_secret TEXT;
ALTER TABLE agency_webhooks ADD COLUMN previous_until TEXT;

-- When the payer's personal data of a closed invoice was erased at the
-- end of privacy.retention_days (NULL: kept).
ALTER TABLE invoices ADD COLUMN personal_data_erased_at TEXT;
CREATE INDEX invoices_keeping_personal_data ON invoices (updated_at)
    WHERE personal_data_erased_at IS NULL AND status <> 'open';
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- Dead letters are counted at each metrics scrape: from their own index,
-- not by reading every event.
CREATE INDEX outbox_events_dead ON outbox_events (id) WHERE status = 'dead';
