-- The dossier register is imported as a job, as statements are: the
-- uploaded file is stored and queued, its rows applied in batches of short
-- transactions, and its findings and summary written when the last batch
-- commits.
CREATE TABLE register_imports (
    id             TEXT PRIMARY KEY,
    sha256         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'refused')),
    -- Where the uploaded file was stored, for the job to read (and resume from).
    stored_file    TEXT NOT NULL,
    imported_at    TEXT NOT NULL,
    imported_by    TEXT NOT NULL,
    -- The path prefix of the importing key's scope, and its agency (NULL
    -- for the whole service).
    imported_scope TEXT NOT NULL,
    scope_code     TEXT,
    -- The file's rows once read and checked, and how many are applied: a
    -- job resumed after a crash goes on after them.
    rows_total     BIGINT,
    rows_applied   BIGINT NOT NULL DEFAULT 0,
    -- What the applied rows came to so far (JSON), written with each batch;
    -- the summary once done.
    progress       TEXT,
    summary        TEXT,
    refused_line   BIGINT,
    refused_reason TEXT,
    -- Which process runs the job, and until when its claim holds unless renewed.
    claimed_by     TEXT,
    claimed_until  TEXT
);
CREATE INDEX register_imports_unfinished ON register_imports (status, id)
    WHERE status IN ('queued', 'running');
CREATE INDEX register_imports_by_file ON register_imports (sha256, imported_scope);
