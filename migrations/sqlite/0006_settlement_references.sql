-- Payments, agencies and statements are never deleted nor given another
-- key: the lines of statements, the exceptions and the reports name them.
-- SQLite checks a line's references as foreign keys, which cost it little;
-- PostgreSQL checks them once per statement, and relies on these rules.

CREATE TRIGGER payments_never_deleted BEFORE DELETE ON payments
BEGIN
    SELECT RAISE(ABORT, 'payments are never deleted');
END;
CREATE TRIGGER agencies_never_deleted BEFORE DELETE ON agencies
BEGIN
    SELECT RAISE(ABORT, 'agencies are never deleted');
END;
CREATE TRIGGER settlement_files_never_deleted BEFORE DELETE ON settlement_files
BEGIN
    SELECT RAISE(ABORT, 'settlement_files are never deleted');
END;

CREATE TRIGGER payments_keep_their_key BEFORE UPDATE OF id ON payments
    WHEN OLD.id IS NOT NEW.id
BEGIN
    SELECT RAISE(ABORT, 'payments keep their key');
END;
CREATE TRIGGER agencies_keep_their_key BEFORE UPDATE OF code ON agencies
    WHEN OLD.code IS NOT NEW.code
BEGIN
    SELECT RAISE(ABORT, 'agencies keep their key');
END;
CREATE TRIGGER settlement_files_keep_their_key BEFORE UPDATE OF id ON settlement_files
    WHEN OLD.id IS NOT NEW.id
BEGIN
    SELECT RAISE(ABORT, 'settlement_files keep their key');
END;
