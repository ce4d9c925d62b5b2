"""Ledger entries are immutable: the balance is derived from them, so the database refuses any change."""

from django.db import migrations


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # scell_append_only() is created by invoicing 0002.
        schema_editor.execute(
            "CREATE TRIGGER billing_ledgerentry_append_only BEFORE UPDATE OR DELETE ON billing_ledgerentry "
            "FOR EACH ROW EXECUTE FUNCTION scell_append_only()",
            params=None,
        )
    elif schema_editor.connection.vendor == "sqlite":
        for op in ("UPDATE", "DELETE"):
            schema_editor.execute(
                f"CREATE TRIGGER billing_ledgerentry_no_{op.lower()} BEFORE {op} ON billing_ledgerentry "
                "BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END"
            )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS billing_ledgerentry_append_only ON billing_ledgerentry")
    elif schema_editor.connection.vendor == "sqlite":
        for op in ("update", "delete"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS billing_ledgerentry_no_{op}")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_creditaccount_low_balance_alerted_at_and_more"),
        ("invoicing", "0002_immutability_triggers"),
    ]

    operations = [migrations.RunPython(forward, backward)]
