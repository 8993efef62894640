"""On PostgreSQL, the database itself refuses changes to finalized invoices and their parts.

A finalized row may only move to paid or void (setting ``paid_at`` or ``voided_at``); nothing else of it
changes, and it is never deleted. Lines, VAT breakdown and allowances of a non-draft invoice are neither
added, changed nor deleted.
"""

from typing import Any

from django.db import migrations

INVOICE_FUNCTION = """
CREATE OR REPLACE FUNCTION billing_refuse_invoice_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'invoice % is % and cannot be deleted', OLD.public_id, OLD.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'draft' THEN
        RETURN NEW;
    END IF;
    IF OLD.status = 'finalized' AND NEW.status = 'paid'
       AND (to_jsonb(NEW) - 'status' - 'paid_at') = (to_jsonb(OLD) - 'status' - 'paid_at') THEN
        RETURN NEW;
    END IF;
    IF OLD.status = 'finalized' AND NEW.status = 'void'
       AND (to_jsonb(NEW) - 'status' - 'voided_at') = (to_jsonb(OLD) - 'status' - 'voided_at') THEN
        RETURN NEW;
    END IF;
    IF to_jsonb(NEW) = to_jsonb(OLD) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'invoice % is % and can no longer change', OLD.public_id, OLD.status
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_invoice_immutable
    BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_invoice_change();
"""

PART_FUNCTION = """
CREATE OR REPLACE FUNCTION billing_refuse_part_change() RETURNS trigger AS $$
DECLARE
    parent_status text;
BEGIN
    SELECT status INTO parent_status FROM billing_invoice
        WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.invoice_id ELSE NEW.invoice_id END;
    IF parent_status IS NOT NULL AND parent_status <> 'draft' THEN
        RAISE EXCEPTION 'the invoice is % and its % can no longer change', parent_status, TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.invoice_id <> OLD.invoice_id THEN
        SELECT status INTO parent_status FROM billing_invoice WHERE id = OLD.invoice_id;
        IF parent_status <> 'draft' THEN
            RAISE EXCEPTION 'the invoice is % and its % can no longer change', parent_status, TG_TABLE_NAME
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$ LANGUAGE plpgsql;
"""

PART_TABLES = ("billing_invoiceline", "billing_invoicevatbreakdown", "billing_invoiceallowance")


def install(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(INVOICE_FUNCTION, params=None)
    schema_editor.execute(PART_FUNCTION, params=None)
    for table in PART_TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_immutable BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION billing_refuse_part_change()"
        )


def remove(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in PART_TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
    schema_editor.execute("DROP TRIGGER IF EXISTS billing_invoice_immutable ON billing_invoice")
    schema_editor.execute("DROP FUNCTION IF EXISTS billing_refuse_part_change()")
    schema_editor.execute("DROP FUNCTION IF EXISTS billing_refuse_invoice_change()")


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(install, remove, elidable=False)]
