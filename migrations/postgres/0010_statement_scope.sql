-- The scope of the key that imported each statement: the path prefix of
-- its agencies. A statement's summary counts every line of its file, so
-- only a key whose scope covers the importer's sees it; each line is
-- shown to the keys that see its agency. Statements imported before are
-- given the scope their import checked, else the whole service's.
ALTER TABLE settlement_files ADD COLUMN imported_scope TEXT NOT NULL DEFAULT '/';
UPDATE settlement_files SET imported_scope = checked_scope WHERE checked_scope IS NOT NULL;
