"""Issued and received invoices, and their lines, are frozen by the database itself.

Production runs the application with a role that does not own these tables, so it cannot drop the
triggers either (see README, "Fiscal guarantees"). On SQLite (embedded default) the same triggers exist,
but only PostgreSQL is the documented guarantee.
"""

from django.db import migrations

PG_FORWARD = r"""
CREATE OR REPLACE FUNCTION scell_invoice_frozen() RETURNS trigger AS $$
BEGIN
    IF OLD.status <> 'draft' THEN
        RAISE EXCEPTION 'invoice % is % and cannot be changed or deleted', OLD.number, OLD.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER invoicing_invoice_frozen
    BEFORE UPDATE OR DELETE ON invoicing_invoice
    FOR EACH ROW EXECUTE FUNCTION scell_invoice_frozen();

CREATE OR REPLACE FUNCTION scell_invoice_line_frozen() RETURNS trigger AS $$
DECLARE
    parent_status text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT status INTO parent_status FROM invoicing_invoice WHERE id = NEW.invoice_id;
        -- Received invoices get their lines right after their header, in the import transaction.
        IF parent_status = 'issued' THEN
            RAISE EXCEPTION 'lines of an issued invoice cannot be added' USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END IF;
    SELECT status INTO parent_status FROM invoicing_invoice WHERE id = OLD.invoice_id;
    IF parent_status IS NOT NULL AND parent_status <> 'draft' THEN
        RAISE EXCEPTION 'lines of a % invoice cannot be changed or deleted', parent_status
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER invoicing_invoiceline_frozen
    BEFORE INSERT OR UPDATE OR DELETE ON invoicing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION scell_invoice_line_frozen();

CREATE OR REPLACE FUNCTION scell_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER invoicing_invoiceevent_append_only
    BEFORE UPDATE ON invoicing_invoiceevent
    FOR EACH ROW EXECUTE FUNCTION scell_append_only();

-- The events of a deleted draft go with it; those of an issued invoice stay forever.
CREATE OR REPLACE FUNCTION scell_invoice_event_kept() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM invoicing_invoice WHERE id = OLD.invoice_id AND status <> 'draft') THEN
        RAISE EXCEPTION 'events of a frozen invoice cannot be deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER invoicing_invoiceevent_kept
    BEFORE DELETE ON invoicing_invoiceevent
    FOR EACH ROW EXECUTE FUNCTION scell_invoice_event_kept();
"""

PG_BACKWARD = r"""
DROP TRIGGER IF EXISTS invoicing_invoiceevent_kept ON invoicing_invoiceevent;
DROP TRIGGER IF EXISTS invoicing_invoiceevent_append_only ON invoicing_invoiceevent;
DROP FUNCTION IF EXISTS scell_invoice_event_kept();
DROP TRIGGER IF EXISTS invoicing_invoiceline_frozen ON invoicing_invoiceline;
DROP TRIGGER IF EXISTS invoicing_invoice_frozen ON invoicing_invoice;
DROP FUNCTION IF EXISTS scell_invoice_line_frozen();
DROP FUNCTION IF EXISTS scell_invoice_frozen();
DROP FUNCTION IF EXISTS scell_append_only();
"""

SQLITE_FORWARD = [
    """CREATE TRIGGER invoicing_invoice_frozen_update BEFORE UPDATE ON invoicing_invoice
       WHEN OLD.status <> 'draft' BEGIN SELECT RAISE(ABORT, 'invoice is frozen'); END""",
    """CREATE TRIGGER invoicing_invoice_frozen_delete BEFORE DELETE ON invoicing_invoice
       WHEN OLD.status <> 'draft' BEGIN SELECT RAISE(ABORT, 'invoice is frozen'); END""",
    """CREATE TRIGGER invoicing_invoiceline_frozen_insert BEFORE INSERT ON invoicing_invoiceline
       WHEN (SELECT status FROM invoicing_invoice WHERE id = NEW.invoice_id) = 'issued'
       BEGIN SELECT RAISE(ABORT, 'lines of an issued invoice cannot be added'); END""",
    """CREATE TRIGGER invoicing_invoiceline_frozen_update BEFORE UPDATE ON invoicing_invoiceline
       WHEN (SELECT status FROM invoicing_invoice WHERE id = OLD.invoice_id) <> 'draft'
       BEGIN SELECT RAISE(ABORT, 'lines of a frozen invoice cannot change'); END""",
    """CREATE TRIGGER invoicing_invoiceline_frozen_delete BEFORE DELETE ON invoicing_invoiceline
       WHEN (SELECT status FROM invoicing_invoice WHERE id = OLD.invoice_id) <> 'draft'
       BEGIN SELECT RAISE(ABORT, 'lines of a frozen invoice cannot change'); END""",
    """CREATE TRIGGER invoicing_invoiceevent_append_only_update BEFORE UPDATE ON invoicing_invoiceevent
       BEGIN SELECT RAISE(ABORT, 'invoice events are append-only'); END""",
    """CREATE TRIGGER invoicing_invoiceevent_append_only_delete BEFORE DELETE ON invoicing_invoiceevent
       WHEN (SELECT status FROM invoicing_invoice WHERE id = OLD.invoice_id) <> 'draft'
       BEGIN SELECT RAISE(ABORT, 'events of a frozen invoice cannot be deleted'); END""",
]
SQLITE_TRIGGERS = [
    "invoicing_invoice_frozen_update",
    "invoicing_invoice_frozen_delete",
    "invoicing_invoiceline_frozen_insert",
    "invoicing_invoiceline_frozen_update",
    "invoicing_invoiceline_frozen_delete",
    "invoicing_invoiceevent_append_only_update",
    "invoicing_invoiceevent_append_only_delete",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for name in SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("invoicing", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
