-- The latest day each statement settled, kept with the statement: the
-- findings of unsettled payments start from a channel's latest day, which
-- an index over every line's day found, at the cost of an entry for each
-- line imported.
ALTER TABLE settlement_files ADD COLUMN settled_through TEXT;
UPDATE settlement_files SET settled_through = (
    SELECT max(l.settlement_date) FROM settlement_lines l WHERE l.file_id = settlement_files.id
);
DROP INDEX settlement_lines_by_date;
