-- A statement's lines name their file, the payment each settles and that
-- payment's agency. As foreign keys, those three references were checked
-- one row at a time, each check a query of its own that locked the row it
-- found: half of a million-line import's time. They are checked instead
-- once per statement, over every line it wrote. The rows they name are
-- never deleted nor given another key, so what was checked stays true,
-- with no lock to hold.

ALTER TABLE settlement_lines
    DROP CONSTRAINT settlement_lines_file_id_fkey,
    DROP CONSTRAINT settlement_lines_payment_id_fkey,
    DROP CONSTRAINT settlement_lines_agency_code_fkey;

CREATE FUNCTION settlement_lines_name_what_exists() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM written w
               WHERE NOT EXISTS (SELECT 1 FROM settlement_files f WHERE f.id = w.file_id))
    THEN
        RAISE EXCEPTION 'a settlement line names a statement that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM written w
               WHERE w.payment_id IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id = w.payment_id))
    THEN
        RAISE EXCEPTION 'a settlement line names a payment that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM written w
               WHERE w.agency_code IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM agencies a WHERE a.code = w.agency_code))
    THEN
        RAISE EXCEPTION 'a settlement line names an agency that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER settlement_lines_inserted AFTER INSERT ON settlement_lines
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION settlement_lines_name_what_exists();
CREATE TRIGGER settlement_lines_updated AFTER UPDATE ON settlement_lines
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION settlement_lines_name_what_exists();

CREATE FUNCTION is_never_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% are never deleted', TG_TABLE_NAME;
END;
$$;

CREATE FUNCTION keeps_its_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% keep their key', TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER payments_never_deleted BEFORE DELETE OR TRUNCATE ON payments
    FOR EACH STATEMENT EXECUTE FUNCTION is_never_deleted();
CREATE TRIGGER agencies_never_deleted BEFORE DELETE OR TRUNCATE ON agencies
    FOR EACH STATEMENT EXECUTE FUNCTION is_never_deleted();
CREATE TRIGGER settlement_files_never_deleted BEFORE DELETE OR TRUNCATE ON settlement_files
    FOR EACH STATEMENT EXECUTE FUNCTION is_never_deleted();

CREATE TRIGGER payments_keep_their_key BEFORE UPDATE OF id ON payments
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION keeps_its_key();
CREATE TRIGGER agencies_keep_their_key BEFORE UPDATE OF code ON agencies
    FOR EACH ROW WHEN (OLD.code IS DISTINCT FROM NEW.code) EXECUTE FUNCTION keeps_its_key();
CREATE TRIGGER settlement_files_keep_their_key BEFORE UPDATE OF id ON settlement_files
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION keeps_its_key();
