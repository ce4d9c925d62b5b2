"""The hash chain, written by PostgreSQL itself.

Triggers on the fiscal tables append a ``ChainEntry`` in the transaction that makes a row fiscal (an
invoice issued, a received invoice stored, a line or lifecycle event of a non-draft invoice), so a row
inserted by raw SQL, bypassing Django, is chained like any other. Appends to one chain are serialised
by the row lock on its ``archive_chainhead`` row; different chains proceed in parallel.

The chain tables refuse UPDATE and DELETE, and TRUNCATE is refused on them and on the fiscal tables.
These guards hold against the application's own SQL; they do not hold against the owner of the tables
(who can drop a trigger) nor a superuser (``session_replication_role = replica``). Production therefore
runs the application with a role that does not own these tables (README, "Fiscal guarantees"), and the
daily health check (``archive.chain``) catches what a privileged hand changed anyway.

Canonical bytes of a row: ``to_jsonb(row)::text`` computed under ``TimeZone = UTC`` (timestamps print
the same whatever the application's session says), binary columns (``cii_xml``, ``source_file``)
replaced by their SHA-256 so that entries stay small. ``scell_chain_payload`` is overloaded per table;
another app that chains its own table (signature evidence) defines its overload and calls
``scell_chain_append`` from its trigger.

On SQLite (embedded default) nothing is installed here: ``archive.chain`` writes the same chain from
Django signals, without the database-level guarantees.
"""

from django.db import migrations

PG_FORWARD = r"""
-- Canonical bytes, one overload per fiscal table. Timestamps print in the session's TimeZone, so every
-- caller runs them under UTC: the chain triggers carry SET TimeZone, the verifier sets it locally. (A SET
-- clause here would cost more than the rest of the function on a million-link verification.)
-- The binary columns are blanked before to_jsonb (which would hex-encode them) and put back as SHA-256.
CREATE OR REPLACE FUNCTION scell_chain_payload(r invoicing_invoice) RETURNS bytea
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cii text := encode(sha256(r.cii_xml), 'hex');
    src text := encode(sha256(r.source_file), 'hex');
BEGIN
    r.cii_xml := NULL;
    r.source_file := NULL;
    RETURN convert_to((to_jsonb(r) || jsonb_build_object('cii_xml', cii, 'source_file', src))::text, 'UTF8');
END;
$$;

CREATE OR REPLACE FUNCTION scell_chain_payload(r invoicing_invoiceline) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to(to_jsonb(r)::text, 'UTF8')
$$;

CREATE OR REPLACE FUNCTION scell_chain_payload(r invoicing_invoiceevent) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to(to_jsonb(r)::text, 'UTF8')
$$;

-- The canonical bytes of the current row behind an entry, for tables the verifier does not know
-- statically (dynamic SQL is slower; the known tables are looked up directly by the verifier).
CREATE OR REPLACE FUNCTION scell_chain_current(p_table text, p_id text) RETURNS bytea
LANGUAGE plpgsql STABLE AS $$
DECLARE
    result bytea;
BEGIN
    EXECUTE format('SELECT scell_chain_payload(t) FROM %I t WHERE t.id = %L', p_table, p_id) INTO result;
    RETURN result;
END;
$$;

-- Does the stored payload still describe the current row? Byte equality is the rule; a column added
-- to the table after the entry was written is not part of that entry, so when the bytes differ every
-- key of the stored payload must still hold the same value in the current row.
CREATE OR REPLACE FUNCTION scell_chain_same(stored bytea, cur bytea) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN cur IS NULL THEN false
        WHEN stored = cur THEN true
        ELSE NOT EXISTS (
            SELECT 1
            FROM jsonb_each(convert_from(stored, 'UTF8')::jsonb) AS s(k, v)
            WHERE (convert_from(cur, 'UTF8')::jsonb) -> s.k IS DISTINCT FROM s.v
        )
    END
$$;

-- Append one link. Called only from the fiscal triggers: the guard on the chain tables accepts writes
-- only from a nested trigger while scell.chain_append is on, so neither a direct INSERT nor a direct
-- call of this function can forge a link.
CREATE OR REPLACE FUNCTION scell_chain_append(
    p_tenant uuid, p_sub_tenant uuid, p_livemode boolean, p_table text, p_source_id text, p_payload bytea
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    k text := p_tenant::text || '/' || coalesce(p_sub_tenant::text, '-') || '/'
        || CASE WHEN p_livemode THEN 'live' ELSE 'test' END;
    head_seq bigint;
    head_hash bytea;
    new_hash bytea;
BEGIN
    PERFORM set_config('scell.chain_append', 'on', true);
    INSERT INTO archive_chainhead
        (chain_key, tenant_id, sub_tenant_id, livemode, last_seq, last_hash, updated_at)
    VALUES (k, p_tenant, p_sub_tenant, p_livemode, 0, decode(repeat('00', 32), 'hex'), now())
    ON CONFLICT (chain_key) DO NOTHING;
    -- The head row lock serialises appends to this chain until the transaction ends: seq has no gap
    -- and no fork even when two transactions issue at once.
    SELECT last_seq, last_hash INTO head_seq, head_hash
    FROM archive_chainhead WHERE chain_key = k FOR UPDATE;
    new_hash := sha256(head_hash || p_payload);
    INSERT INTO archive_chainentry
        (chain_key, tenant_id, sub_tenant_id, livemode, seq, source_table, source_id, payload,
         prev_hash, hash, created_at)
    VALUES (k, p_tenant, p_sub_tenant, p_livemode, head_seq + 1, p_table, p_source_id, p_payload,
            head_hash, new_hash, now());
    UPDATE archive_chainhead SET last_seq = head_seq + 1, last_hash = new_hash, updated_at = now()
    WHERE chain_key = k;
    PERFORM set_config('scell.chain_append', 'off', true);
END;
$$;

CREATE OR REPLACE FUNCTION scell_chain_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('scell.chain_append', true) = 'on' AND pg_trigger_depth() > 1
       AND (TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'archive_chainhead')) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on % is refused: the hash chain is append-only and written by the database',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER archive_chainentry_guard
    BEFORE INSERT OR UPDATE OR DELETE ON archive_chainentry
    FOR EACH ROW EXECUTE FUNCTION scell_chain_guard();
CREATE TRIGGER archive_chainhead_guard
    BEFORE INSERT OR UPDATE OR DELETE ON archive_chainhead
    FOR EACH ROW EXECUTE FUNCTION scell_chain_guard();

-- TRUNCATE fires no row trigger; a statement trigger refuses it. The test suite's flush (pytest-django
-- transactional tests) turns scell.allow_truncate on for its own transaction (tests/conftest.py).
CREATE OR REPLACE FUNCTION scell_truncate_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('scell.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'TRUNCATE of % is refused: it holds fiscal records', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER archive_chainentry_no_truncate BEFORE TRUNCATE ON archive_chainentry
    FOR EACH STATEMENT EXECUTE FUNCTION scell_truncate_guard();
CREATE TRIGGER archive_chainhead_no_truncate BEFORE TRUNCATE ON archive_chainhead
    FOR EACH STATEMENT EXECUTE FUNCTION scell_truncate_guard();
CREATE TRIGGER invoicing_invoice_no_truncate BEFORE TRUNCATE ON invoicing_invoice
    FOR EACH STATEMENT EXECUTE FUNCTION scell_truncate_guard();
CREATE TRIGGER invoicing_invoiceline_no_truncate BEFORE TRUNCATE ON invoicing_invoiceline
    FOR EACH STATEMENT EXECUTE FUNCTION scell_truncate_guard();
CREATE TRIGGER invoicing_invoiceevent_no_truncate BEFORE TRUNCATE ON invoicing_invoiceevent
    FOR EACH STATEMENT EXECUTE FUNCTION scell_truncate_guard();

-- An invoice becomes fiscal when issued (draft -> issued: the header, then its lines in order, which
-- the issue froze in the same transaction) or when inserted already issued or received.
CREATE OR REPLACE FUNCTION scell_chain_invoice() RETURNS trigger
LANGUAGE plpgsql SET "TimeZone" = 'UTC' AS $$
DECLARE
    line invoicing_invoiceline;
BEGIN
    PERFORM scell_chain_append(NEW.tenant_id, NEW.sub_tenant_id, NEW.livemode, 'invoicing_invoice',
                               NEW.id::text, scell_chain_payload(NEW));
    IF TG_OP = 'UPDATE' THEN
        FOR line IN SELECT * FROM invoicing_invoiceline WHERE invoice_id = NEW.id ORDER BY position, id LOOP
            PERFORM scell_chain_append(NEW.tenant_id, NEW.sub_tenant_id, NEW.livemode,
                                       'invoicing_invoiceline', line.id::text, scell_chain_payload(line));
        END LOOP;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER invoicing_invoice_chain_issue
    AFTER UPDATE ON invoicing_invoice
    FOR EACH ROW WHEN (OLD.status = 'draft' AND NEW.status = 'issued')
    EXECUTE FUNCTION scell_chain_invoice();
CREATE TRIGGER invoicing_invoice_chain_insert
    AFTER INSERT ON invoicing_invoice
    FOR EACH ROW WHEN (NEW.status IN ('issued', 'received'))
    EXECUTE FUNCTION scell_chain_invoice();

-- Lines (received invoices get theirs after the header) and events of a non-draft invoice go to the
-- chain of their invoice. The 'created' event of a draft is not fiscal.
CREATE OR REPLACE FUNCTION scell_chain_invoice_child() RETURNS trigger
LANGUAGE plpgsql SET "TimeZone" = 'UTC' AS $$
DECLARE
    parent invoicing_invoice;
BEGIN
    SELECT * INTO parent FROM invoicing_invoice WHERE id = NEW.invoice_id;
    IF NOT FOUND OR parent.status = 'draft' THEN
        RETURN NULL;
    END IF;
    PERFORM scell_chain_append(parent.tenant_id, parent.sub_tenant_id, parent.livemode, TG_TABLE_NAME,
                               NEW.id::text, scell_chain_payload(NEW));
    RETURN NULL;
END;
$$;

CREATE TRIGGER invoicing_invoiceline_chain
    AFTER INSERT ON invoicing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION scell_chain_invoice_child();
CREATE TRIGGER invoicing_invoiceevent_chain
    AFTER INSERT ON invoicing_invoiceevent
    FOR EACH ROW EXECUTE FUNCTION scell_chain_invoice_child();
"""

PG_BACKWARD = r"""
DROP TRIGGER IF EXISTS invoicing_invoiceevent_chain ON invoicing_invoiceevent;
DROP TRIGGER IF EXISTS invoicing_invoiceline_chain ON invoicing_invoiceline;
DROP TRIGGER IF EXISTS invoicing_invoice_chain_insert ON invoicing_invoice;
DROP TRIGGER IF EXISTS invoicing_invoice_chain_issue ON invoicing_invoice;
DROP TRIGGER IF EXISTS invoicing_invoiceevent_no_truncate ON invoicing_invoiceevent;
DROP TRIGGER IF EXISTS invoicing_invoiceline_no_truncate ON invoicing_invoiceline;
DROP TRIGGER IF EXISTS invoicing_invoice_no_truncate ON invoicing_invoice;
DROP TRIGGER IF EXISTS archive_chainhead_no_truncate ON archive_chainhead;
DROP TRIGGER IF EXISTS archive_chainentry_no_truncate ON archive_chainentry;
DROP TRIGGER IF EXISTS archive_chainhead_guard ON archive_chainhead;
DROP TRIGGER IF EXISTS archive_chainentry_guard ON archive_chainentry;
DROP FUNCTION IF EXISTS scell_chain_invoice_child();
DROP FUNCTION IF EXISTS scell_chain_invoice();
DROP FUNCTION IF EXISTS scell_truncate_guard();
DROP FUNCTION IF EXISTS scell_chain_guard();
DROP FUNCTION IF EXISTS scell_chain_append(uuid, uuid, boolean, text, text, bytea);
DROP FUNCTION IF EXISTS scell_chain_same(bytea, bytea);
DROP FUNCTION IF EXISTS scell_chain_current(text, text);
DROP FUNCTION IF EXISTS scell_chain_payload(invoicing_invoiceevent);
DROP FUNCTION IF EXISTS scell_chain_payload(invoicing_invoiceline);
DROP FUNCTION IF EXISTS scell_chain_payload(invoicing_invoice);
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("archive", "0001_initial"), ("invoicing", "0002_immutability_triggers")]

    operations = [migrations.RunPython(forward, backward)]
