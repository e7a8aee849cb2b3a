-- Downgrade of migration 0006 (see 0006_least_privilege.sql): policies, checks and pins removed.
DO $$
BEGIN
    IF EXISTS (SELECT FROM semsearch.collections WHERE tenant_setting IS NOT NULL) THEN
        RAISE EXCEPTION 'expected no collection with isolated tenants to downgrade below 0006, got %',
            (SELECT string_agg(name, ', ') FROM semsearch.collections WHERE tenant_setting IS NOT NULL);
    END IF;
END
$$;

GRANT EXECUTE ON FUNCTION semsearch.notify_pending() TO PUBLIC;

-- the pins pin_search_paths() made (those naming pgvector's schema); bm25/sync functions keep theirs
DO $$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = 'semsearch'::regnamespace AND p.prokind = 'f'
                AND EXISTS (SELECT FROM unnest(p.proconfig) s
                            WHERE s LIKE 'search\_path=pg\_catalog, %, pg\_temp' AND s <> 'search_path=pg_catalog, pg_temp')
                AND p.proname NOT IN ('may', 'owns', 'valid_hybrid', 'pin_search_paths')
    LOOP
        EXECUTE format('ALTER FUNCTION %s RESET search_path', fn);
    END LOOP;
END
$$;
DROP FUNCTION semsearch.pin_search_paths();

-- 0002's definition
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
    IF c.tenant_required AND tenant IS NULL THEN
        RAISE EXCEPTION 'expected a tenant for collection % (created with tenant_required), got none',
            quote_literal(collection) USING ERRCODE = '22023';
    END IF;
    RETURN c;
END
$fn$;


DROP POLICY quarantine_writer ON semsearch.quarantine;
ALTER TABLE semsearch.quarantine DISABLE ROW LEVEL SECURITY;
DROP POLICY collections_drop ON semsearch.collections;
DROP POLICY collections_create ON semsearch.collections;
DROP POLICY collections_tune ON semsearch.collections;
DROP POLICY collections_read ON semsearch.collections;
ALTER TABLE semsearch.collections DISABLE ROW LEVEL SECURITY;

ALTER TABLE semsearch.collections
    DROP COLUMN tenant_setting,
    DROP CONSTRAINT collections_tuned_rows_range,
    DROP CONSTRAINT collections_tuning_object,
    DROP CONSTRAINT collections_hybrid_valid,
    DROP CONSTRAINT collections_oversample_range;
DROP FUNCTION semsearch.valid_hybrid(jsonb);
DROP FUNCTION semsearch.owns(text);
DROP FUNCTION semsearch.may(text, text);
