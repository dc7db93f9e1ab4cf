-- Statement imports run as jobs: a file is queued when it has been
-- stored, matched in batches of short transactions, and published (its
-- summary written, status 'done') when the last batch commits. Every
-- statement imported before this was imported whole, so is done.
ALTER TABLE settlement_files ADD COLUMN status TEXT NOT NULL DEFAULT 'done'
    CHECK (status IN ('queued', 'running', 'done', 'refused'));
-- Where the uploaded file was stored, for the job to read (and resume from).
ALTER TABLE settlement_files ADD COLUMN stored_file TEXT;
-- The agency whose subtree the importing key sees; NULL for the whole service.
ALTER TABLE settlement_files ADD COLUMN scope_code TEXT;
ALTER TABLE settlement_files ADD COLUMN settlement_days BIGINT NOT NULL DEFAULT 0;
-- Lines checked before any is applied, and the last line applied: a job
-- resumed after a crash goes on after it.
ALTER TABLE settlement_files ADD COLUMN lines_checked BIGINT NOT NULL DEFAULT 0;
ALTER TABLE settlement_files ADD COLUMN applied_through BIGINT NOT NULL DEFAULT 0;
-- The summary so far (JSON), written with each batch.
ALTER TABLE settlement_files ADD COLUMN progress TEXT;
ALTER TABLE settlement_files ADD COLUMN refused_line BIGINT;
ALTER TABLE settlement_files ADD COLUMN refused_reason TEXT;
-- Which process runs the job, and until when its claim holds unless renewed.
ALTER TABLE settlement_files ADD COLUMN claimed_by TEXT;
ALTER TABLE settlement_files ADD COLUMN claimed_until TEXT;
CREATE INDEX settlement_files_unfinished ON settlement_files (status, id)
    WHERE status IN ('queued', 'running');

-- A refused import applied nothing and is the one file row that may go:
-- the same file sent again takes its place.
DROP TRIGGER settlement_files_never_deleted ON settlement_files;
CREATE TRIGGER settlement_files_never_truncated BEFORE TRUNCATE ON settlement_files
    FOR EACH STATEMENT EXECUTE FUNCTION is_never_deleted();
CREATE TRIGGER settlement_files_never_deleted BEFORE DELETE ON settlement_files
    FOR EACH ROW WHEN (OLD.status <> 'refused') EXECUTE FUNCTION is_never_deleted();
