-- Where each audited request came from: the connection's peer, or behind
-- server.trusted_proxies the client they name.
ALTER TABLE audit_log ADD COLUMN client_addr TEXT;

-- A webhook secret being replaced keeps signing beside the new one until
-- previous_until, so that a dossier system can move over without missing
-- a delivery.
ALTER TABLE agency_webhooks ADD COLUMN previous_secret TEXT;
ALTER TABLE agency_webhooks ADD COLUMN previous_until TEXT;
