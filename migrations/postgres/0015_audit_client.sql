-- Where each audited request came from: the connection's peer, or behind
-- server.trusted_proxies the client they name.
ALTER TABLE audit_log ADD COLUMN client_addr TEXT;
