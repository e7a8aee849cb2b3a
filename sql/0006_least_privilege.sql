-- Least privilege (migration 0006): per-collection rights enforced by the database on the shared
-- tables, tuned settings validated where they are stored, every function's search_path pinned.

-- Whether the calling role has `privilege` on collection table `table_name` (false when it is gone).
-- The catalog's and the quarantine's row-level security ask it: a role's rights on one collection's
-- table are its rights on that collection's shared rows, however it connects.
CREATE FUNCTION semsearch.may(privilege text, table_name text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN coalesce(has_table_privilege(to_regclass(format('semsearch.%I', table_name)), privilege), false);

-- Whether the calling role owns (is a member of the owner of) collection table `table_name`.
CREATE FUNCTION semsearch.owns(table_name text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN coalesce((SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c
                 WHERE c.oid = to_regclass(format('semsearch.%I', table_name))), false);

-- A stored hybrid setting (tune_hybrid()): none, or an object with a known fusion and weights that are
-- numbers between 0 and 1000 (jsonb numbers are never NaN or infinite).
CREATE FUNCTION semsearch.valid_hybrid(h jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN h IS NULL OR (
    jsonb_typeof(h) = 'object'
    AND coalesce(h ->> 'fusion', '') IN ('rrf', 'blend')
    AND (NOT h ? 'vector_weight' OR (jsonb_typeof(h -> 'vector_weight') = 'number'
                                     AND (h ->> 'vector_weight')::numeric BETWEEN 0 AND 1000))
    AND (NOT h ? 'text_weight' OR (jsonb_typeof(h -> 'text_weight') = 'number'
                                   AND (h ->> 'text_weight')::numeric BETWEEN 0 AND 1000))
);

-- NaN passed `oversample >= 1` (NaN sorts above every number); BETWEEN refuses NaN and infinities
ALTER TABLE semsearch.collections
    ADD CONSTRAINT collections_oversample_range CHECK (oversample BETWEEN 1 AND 1000),
    ADD CONSTRAINT collections_hybrid_valid CHECK (semsearch.valid_hybrid(hybrid)),
    ADD CONSTRAINT collections_tuning_object CHECK (tuning IS NULL OR jsonb_typeof(tuning) = 'object'),
    ADD CONSTRAINT collections_tuned_rows_range CHECK (tuned_rows >= 0),
    -- the setting that names a reader's tenant, once Database.isolate_tenants() made the policies
    ADD COLUMN tenant_setting text CONSTRAINT collections_tenant_setting_check
        CHECK (tenant_setting ~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$');

-- The catalog: a role sees the rows of the collections it may read, changes the tuned columns (its
-- column grants) of those it may write, adds rows if granted INSERT on the catalog, and deletes those
-- whose table it owns. The catalog's owner (who runs migrations, create and alter) is not subject
-- to these policies.
ALTER TABLE semsearch.collections ENABLE ROW LEVEL SECURITY;
CREATE POLICY collections_read ON semsearch.collections FOR SELECT
    USING (semsearch.may('SELECT', table_name));
CREATE POLICY collections_tune ON semsearch.collections FOR UPDATE
    USING (semsearch.may('UPDATE', table_name)) WITH CHECK (semsearch.may('UPDATE', table_name));
CREATE POLICY collections_create ON semsearch.collections FOR INSERT WITH CHECK (true);
CREATE POLICY collections_drop ON semsearch.collections FOR DELETE USING (semsearch.owns(table_name));

-- The quarantine: a writer of a collection (INSERT on its table) sees and changes that collection's
-- refused texts, and no other's
ALTER TABLE semsearch.quarantine ENABLE ROW LEVEL SECURITY;
CREATE POLICY quarantine_writer ON semsearch.quarantine FOR ALL
    USING (semsearch.may('INSERT', table_name)) WITH CHECK (semsearch.may('INSERT', table_name));

-- The catalog row a search needs, checked (0002's, and a session's tenant setting counts as its tenant).
CREATE OR REPLACE FUNCTION semsearch.collection_for_search(collection text, tenant text, k integer)
RETURNS semsearch.collections
LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
    c semsearch.collections;
BEGIN
    IF k IS NULL OR k < 1 OR k > 10000 THEN
        RAISE EXCEPTION 'expected k between 1 and 10000, got %', k USING ERRCODE = '22023';
    END IF;
    SELECT * INTO c FROM semsearch.collections WHERE name = collection;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown collection %', quote_literal(collection) USING ERRCODE = '42704';
    END IF;
    IF c.statements_version IS DISTINCT FROM 2 THEN
        RAISE EXCEPTION 'expected collection % at statements version 2, got %: run `semsearch db upgrade`',
            quote_literal(collection), c.statements_version USING ERRCODE = '55000';
    END IF;
    -- with isolated tenants (Database.isolate_tenants) the session's setting names the tenant
    IF c.tenant_required AND tenant IS NULL
       AND coalesce(current_setting(c.tenant_setting, true), '') = '' THEN
        RAISE EXCEPTION 'expected a tenant for collection % (created with tenant_required), got none',
            quote_literal(collection) USING ERRCODE = '22023';
    END IF;
    RETURN c;
END
$fn$;

-- Every function in schema semsearch without a pinned search_path gets one: pg_catalog first, then
-- the schema pgvector is installed in (its types, operators and functions), then pg_temp. Nothing a
-- caller puts on its own path (a schema named after the role, say) can shadow what they call.
-- Called again after each DDL that makes functions (semsearch/statements.py, semsearch/table_sync.py).
CREATE FUNCTION semsearch.pin_search_paths() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    fn regprocedure;
    vec text := (SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                 WHERE e.extname = 'vector');
    pinned integer := 0;
BEGIN
    FOR fn IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = 'semsearch'::regnamespace AND p.prokind = 'f'
                AND NOT EXISTS (SELECT FROM unnest(p.proconfig) s WHERE s LIKE 'search\_path=%')
                AND pg_has_role(p.proowner, 'USAGE')
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %s, pg_temp', fn, coalesce(vec, 'public'));
        pinned := pinned + 1;
    END LOOP;
    RETURN pinned;
END
$fn$;

SELECT semsearch.pin_search_paths();

-- Only the watchers' own triggers send on their channel: the function that sends is not callable
-- by PUBLIC (triggers run it whatever its EXECUTE grants)
REVOKE EXECUTE ON FUNCTION semsearch.notify_pending() FROM PUBLIC;
