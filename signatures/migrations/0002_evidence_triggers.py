"""The evidence log of signature requests is append-only and chained by the database itself.

Every ``SignatureEvent`` (the signing act, each code sent, verified or failed, the request's start and
end) is the proof a signer's act rests on: a simple electronic signature may not be denied admissibility
as evidence (eIDAS art. 25(1)), and its weight is that of the log behind it. On PostgreSQL:

- UPDATE and DELETE are refused (``scell_append_only``, invoicing migration 0002), and TRUNCATE too
  (``scell_truncate_guard``, archive migration 0002);
- every INSERT, by the services or by raw SQL, appends a link to the hash chain of the request's tenant
  (sub-tenant, mode) in the same transaction, with ``scell_chain_payload`` overloaded for this table.

Requests, signers and code challenges are not chained: their statuses move (and signers' phone numbers
are erased after the evidence period); the acts they record are the events.

On SQLite (embedded default) triggers refuse UPDATE and DELETE of events and ``archive.chain`` writes
the chain from Django signals; only PostgreSQL is the documented guarantee.
"""

from django.db import migrations

PG_FORWARD = r"""
-- No binary column: the whole row, under the caller's UTC (the trigger sets it, the verifier too).
CREATE OR REPLACE FUNCTION scell_chain_payload(r signatures_signatureevent) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to(to_jsonb(r)::text, 'UTF8')
$$;

CREATE OR REPLACE FUNCTION scell_chain_signature_event() RETURNS trigger
LANGUAGE plpgsql SET "TimeZone" = 'UTC' AS $$
DECLARE
    p_tenant uuid;
    p_sub_tenant uuid;
    p_livemode boolean;
BEGIN
    SELECT tenant_id, sub_tenant_id, livemode INTO p_tenant, p_sub_tenant, p_livemode
    FROM signatures_signaturerequest WHERE id = NEW.request_id;
    -- Foreign keys are checked at commit (deferred): an event of an unknown request would reach this
    -- point, and an event that cannot be chained must not be stored.
    IF NOT FOUND THEN
        RAISE EXCEPTION 'signature event % names no signature request', NEW.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM scell_chain_append(p_tenant, p_sub_tenant, p_livemode, 'signatures_signatureevent',
                               NEW.id::text, scell_chain_payload(NEW));
    RETURN NULL;
END;
$$;

CREATE TRIGGER signatures_signatureevent_chain
    AFTER INSERT ON signatures_signatureevent
    FOR EACH ROW EXECUTE FUNCTION scell_chain_signature_event();

-- scell_append_only raises whatever the operation: one trigger refuses both.
CREATE TRIGGER signatures_signatureevent_append_only
    BEFORE UPDATE OR DELETE ON signatures_signatureevent
    FOR EACH ROW EXECUTE FUNCTION scell_append_only();

CREATE TRIGGER signatures_signatureevent_no_truncate BEFORE TRUNCATE ON signatures_signatureevent
    FOR EACH STATEMENT EXECUTE FUNCTION scell_truncate_guard();
"""

PG_BACKWARD = r"""
DROP TRIGGER IF EXISTS signatures_signatureevent_no_truncate ON signatures_signatureevent;
DROP TRIGGER IF EXISTS signatures_signatureevent_append_only ON signatures_signatureevent;
DROP TRIGGER IF EXISTS signatures_signatureevent_chain ON signatures_signatureevent;
DROP FUNCTION IF EXISTS scell_chain_signature_event();
DROP FUNCTION IF EXISTS scell_chain_payload(signatures_signatureevent);
"""

SQLITE_FORWARD = [
    """CREATE TRIGGER signatures_signatureevent_append_only_update BEFORE UPDATE ON signatures_signatureevent
       BEGIN SELECT RAISE(ABORT, 'signature events are append-only'); END""",
    """CREATE TRIGGER signatures_signatureevent_append_only_delete BEFORE DELETE ON signatures_signatureevent
       BEGIN SELECT RAISE(ABORT, 'signature events are append-only'); END""",
]
SQLITE_TRIGGERS = [
    "signatures_signatureevent_append_only_update",
    "signatures_signatureevent_append_only_delete",
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
    dependencies = [
        ("signatures", "0001_initial"),
        ("archive", "0002_chain_triggers"),
        ("invoicing", "0002_immutability_triggers"),
    ]

    operations = [migrations.RunPython(forward, backward)]
