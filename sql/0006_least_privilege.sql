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

-- The statements version of the library's code: made again from its one definition (Python's
-- STATEMENTS_VERSION) by `semsearch db upgrade` after the migrations (semsearch/generated.py)
CREATE FUNCTION semsearch.statements_version() RETURNS integer LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp RETURN 2;

-- The catalog row a search needs, checked (0002's; the statements version from the function above,
-- and a session's tenant setting counts as its tenant).
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
    IF c.statements_version IS DISTINCT FROM semsearch.statements_version() THEN
        RAISE EXCEPTION 'expected collection % at statements version %, got %: run `semsearch db upgrade`',
            quote_literal(collection), semsearch.statements_version(), c.statements_version USING ERRCODE = '55000';
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

-- The SQL callers' filter parts, checked before any row is read: filter_vars must be an object and
-- define every variable filter_path names (jsonpath's own errors say neither in terms of these arguments).
CREATE FUNCTION semsearch.check_filter(filter_path jsonpath, filter_vars jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $fn$
DECLARE
    missing text;
BEGIN
    IF filter_vars IS NOT NULL AND jsonb_typeof(filter_vars) <> 'object' THEN
        RAISE EXCEPTION 'expected filter_vars as a json object of the variables filter_path names, got %',
            jsonb_typeof(filter_vars) USING ERRCODE = '22023';
    END IF;
    -- the caps Python's where= has (semsearch.filters.MAX_IN_VALUES, MAX_PATH_CHARS)
    IF filter_vars IS NOT NULL
       AND jsonb_path_exists(filter_vars, 'strict $.* ? (@.type() == "array" && @.size() > 1000)') THEN
        RAISE EXCEPTION 'expected at most 1000 values in one filter_vars list, got more' USING ERRCODE = '22023';
    END IF;
    IF filter_path IS NULL THEN
        RETURN true;
    END IF;
    IF length(filter_path::text) > 65536 THEN
        RAISE EXCEPTION 'expected a filter_path of at most 65536 characters, got %', length(filter_path::text)
            USING ERRCODE = '22023';
    END IF;
    -- every variable, also one in a filter no item reaches on an empty document (exists($.y ? (@ > $v))):
    -- a jsonpath's text prints each as $"name", and escapes quotes inside strings
    SELECT m[1] INTO missing
    FROM regexp_matches(filter_path::text, '\$"((?:[^"\\]|\\.)*)"', 'g') AS m
    WHERE NOT coalesce(filter_vars, '{}'::jsonb) ? m[1]
    LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'expected filter_vars to define every $variable of filter_path, got %: could not find jsonpath variable "%"',
            coalesce(filter_vars::text, 'none'), missing USING ERRCODE = '22023';
    END IF;
    -- a path that is no predicate ('$.y') would match no row, silently
    BEGIN
        PERFORM jsonb_path_match('{}'::jsonb, filter_path, coalesce(filter_vars, '{}'::jsonb), false);
    EXCEPTION
        WHEN singleton_sql_json_item_required THEN
            RAISE EXCEPTION 'expected filter_path as a predicate (true or false for each row), got %',
                quote_literal(filter_path::text) USING ERRCODE = '22023';
        WHEN others THEN
            NULL;  -- e.g. a strict-mode path on the empty document: the rows decide
    END;
    RETURN true;
END
$fn$;

-- hybrid_search()'s own arguments, checked as search() checks its: the same limits as Python
CREATE FUNCTION semsearch.check_hybrid(k integer, vector_weight real, text_weight real, rrf_k integer,
                                       candidates integer) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $fn$
BEGIN
    IF k IS NULL OR k < 1 OR k > 10000 THEN
        RAISE EXCEPTION 'expected k between 1 and 10000, got %', k USING ERRCODE = '22023';
    END IF;
    IF vector_weight IS NOT NULL AND NOT vector_weight BETWEEN 0 AND 1000 THEN
        RAISE EXCEPTION 'expected vector_weight between 0 and 1000, got %', vector_weight USING ERRCODE = '22023';
    END IF;
    IF text_weight IS NOT NULL AND NOT text_weight BETWEEN 0 AND 1000 THEN
        RAISE EXCEPTION 'expected text_weight between 0 and 1000, got %', text_weight USING ERRCODE = '22023';
    END IF;
    IF rrf_k IS NULL OR rrf_k < 0 OR rrf_k > 10000 THEN
        RAISE EXCEPTION 'expected rrf_k between 0 and 10000, got %', rrf_k USING ERRCODE = '22023';
    END IF;
    IF candidates IS NOT NULL AND (candidates < 1 OR candidates > 10000) THEN
        RAISE EXCEPTION 'expected candidates between 1 and 10000, got %', candidates USING ERRCODE = '22023';
    END IF;
    RETURN true;
END
$fn$;

-- 0002's filter_spec, search and hybrid_search, with those checks (and search() refusing a zero vector)
CREATE OR REPLACE FUNCTION semsearch.filter_spec(
    filter jsonb, filter_path jsonpath, filter_vars jsonb, tenant text
) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (
    SELECT nullif(coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb), '{}'::jsonb)
    FROM jsonb_each(jsonb_build_object(
        'contains', filter, 'path', filter_path::text, 'vars', filter_vars, 'tenant', tenant)) e
    WHERE semsearch.check_filter(filter_path, filter_vars)
      AND jsonb_typeof(e.value) <> 'null'
      AND (e.key <> 'contains'
           OR NOT jsonb_path_exists(e.value, 'strict $.** ? (@.type() == "object").keyvalue() ? (@.key starts with "$")')
           OR semsearch.fail('expected filter => as plain containment (json values, no operators), got a $-key: '
                             || 'use filter_path => and filter_vars =>, or where= from Python'))
);


CREATE OR REPLACE FUNCTION semsearch.search(
    collection text,
    query vector,
    k integer DEFAULT 10,
    oversample real DEFAULT NULL,
    ef_search integer DEFAULT NULL,
    exact boolean DEFAULT false,
    filter jsonb DEFAULT NULL,
    filter_path jsonpath DEFAULT NULL,
    filter_vars jsonb DEFAULT NULL,
    tenant text DEFAULT NULL
) RETURNS SETOF semsearch.hit
LANGUAGE plpgsql
AS $fn$
DECLARE
    c semsearch.collections;
    hits semsearch.hit[];
    f jsonb := semsearch.filter_spec(filter, filter_path, filter_vars, tenant);
    candidates integer;
    matching float8;
    total float8;
    old_ef text;
    old_iter text;
BEGIN
    IF oversample IS NOT NULL AND (oversample < 1 OR oversample > 1000) THEN
        RAISE EXCEPTION 'expected oversample between 1 and 1000, got %', oversample USING ERRCODE = '22023';
    END IF;
    IF ef_search IS NOT NULL AND (ef_search < 1 OR ef_search > 1000) THEN
        RAISE EXCEPTION 'expected ef_search between 1 and 1000, got %', ef_search USING ERRCODE = '22023';
    END IF;
    c := semsearch.collection_for_search(collection, tenant, k);
    IF query IS NULL OR vector_dims(query) <> c.dims THEN
        RAISE EXCEPTION 'expected a query vector of % dims, got %', c.dims, vector_dims(query)
            USING ERRCODE = '22023';
    END IF;
    -- cosine similarity to a zero vector is NaN for every row
    IF vector_norm(query) = 0 THEN
        RAISE EXCEPTION 'expected a query vector with a direction, got all zeros' USING ERRCODE = '22023';
    END IF;
    IF filter IS NOT NULL AND jsonb_typeof(filter) <> 'object' THEN
        RAISE EXCEPTION 'expected filter as a json object, got %', jsonb_typeof(filter) USING ERRCODE = '22023';
    END IF;
    candidates := least(10000, ceil(k * coalesce(oversample, c.oversample)))::integer;

    IF NOT exact AND f IS NOT NULL THEN
        -- A selective filter starves the index scan: with m of n rows matching it must
        -- visit about candidates*n/m tuples, while an exact scan of the matches (found
        -- through the metadata / tenant indexes) costs about m. The planner's estimate
        -- from pg_statistic decides.
        EXECUTE format('SELECT semsearch.%I($1)', c.table_name || '_matching') INTO matching USING f;
        SELECT reltuples INTO total FROM pg_class WHERE oid = format('semsearch.%I', c.table_name)::regclass;
        IF total > 0 AND (matching * matching < candidates * total
                          OR candidates * total / matching
                             > coalesce(current_setting('hnsw.max_scan_tuples', true)::float8, 20000)) THEN
            exact := true;
        END IF;
    END IF;

    IF NOT exact THEN
        -- HNSW returns at most ef_search rows per scan unless iterative scans continue it
        old_ef := current_setting('hnsw.ef_search', true);
        PERFORM set_config('hnsw.ef_search',
            least(1000, greatest(coalesce(ef_search, c.ef_search, 40), candidates))::text, true);
        -- relaxed order is free here: the rescore re-sorts exactly (pgvector >= 0.8)
        old_iter := current_setting('hnsw.iterative_scan', true);
        IF old_iter IS NOT NULL AND f IS NOT NULL THEN
            PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
        END IF;
        EXECUTE format('SELECT array_agg(ROW(h.key, h.content, h.score, h.metadata)::semsearch.hit ORDER BY h.o) '
                       'FROM semsearch.%I($1, $2, $3, $4) WITH ORDINALITY h(key, content, score, metadata, o)',
                       c.table_name || '_ann')
            INTO hits USING query, k, candidates, f;
        PERFORM set_config('hnsw.ef_search', coalesce(old_ef, '40'), true);
        IF old_iter IS NOT NULL AND f IS NOT NULL THEN
            PERFORM set_config('hnsw.iterative_scan', old_iter, true);
        END IF;
    END IF;

    -- the approximate pass may miss rows (filters, scan limits, dead tuples); when it
    -- found fewer than k the exact pass decides, so fewer than k means fewer exist
    IF exact OR coalesce(cardinality(hits), 0) < k THEN
        RETURN QUERY EXECUTE format('SELECT * FROM semsearch.%I($1, $2, $3)', c.table_name || '_exact')
            USING query, k, f;
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM unnest(hits);
END
$fn$;

CREATE OR REPLACE FUNCTION semsearch.hybrid_search(
    collection text,
    query_text text,
    query vector,
    k integer DEFAULT 10,
    vector_weight real DEFAULT NULL,
    text_weight real DEFAULT NULL,
    rrf_k integer DEFAULT 60,
    candidates integer DEFAULT NULL,
    filter jsonb DEFAULT NULL,
    filter_path jsonpath DEFAULT NULL,
    filter_vars jsonb DEFAULT NULL,
    tenant text DEFAULT NULL,
    fusion text DEFAULT NULL
) RETURNS SETOF semsearch.hit
LANGUAGE sql
AS $fn$
    WITH checked AS MATERIALIZED (
        SELECT semsearch.check_hybrid(k, vector_weight, text_weight, rrf_k, candidates) AS ok
    ),
    cfg AS (
        SELECT coalesce(fusion, c.hybrid ->> 'fusion', 'blend') AS fusion,
               -- through numeric: a real 0.3 is 0.30000001192092896 as float8, and scores showed it
               coalesce(vector_weight, (c.hybrid ->> 'vector_weight')::real, 0.3)::numeric::float8 AS wv,
               coalesce(text_weight, (c.hybrid ->> 'text_weight')::real, 0.7)::numeric::float8 AS wt,
               -- each list is at most 10,000 rows (0.1.0 asked for k * 4 and failed from k = 2,501)
               least(10000, greatest(coalesce(candidates, 0), k * 4, 40)) AS n
        FROM (SELECT (SELECT hybrid FROM semsearch.collections WHERE name = collection) AS hybrid) c, checked
        WHERE checked.ok
    ),
    v AS (
        SELECT h.*, row_number() OVER () AS r
        FROM cfg, semsearch.search(collection, query, cfg.n, filter => filter, filter_path => filter_path,
                                   filter_vars => filter_vars, tenant => tenant) h
    ),
    t AS (
        SELECT h.*, row_number() OVER () AS r
        FROM cfg, semsearch.text_search(collection, query_text, cfg.n, filter, filter_path, filter_vars, tenant) h
    ),
    vs AS (SELECT max(score) AS hi, min(score) AS lo FROM v),
    ts AS (SELECT max(score) AS hi, min(score) AS lo FROM t)
    SELECT coalesce(v.key, t.key), coalesce(v.content, t.content),
           (CASE cfg.fusion
                WHEN 'rrf' THEN coalesce(cfg.wv / (rrf_k + v.r), 0) + coalesce(cfg.wt / (rrf_k + t.r), 0)
                -- a row missing from a list adds 0; a list of equal scores counts them all as 1
                ELSE CASE WHEN v.key IS NULL THEN 0
                          ELSE cfg.wv * coalesce((v.score - vs.lo) / nullif(vs.hi - vs.lo, 0), 1) END
                   + CASE WHEN t.key IS NULL THEN 0
                          ELSE cfg.wt * coalesce((t.score - ts.lo) / nullif(ts.hi - ts.lo, 0), 1) END
            END)::float8 AS score,
           coalesce(v.metadata, t.metadata)
    FROM v FULL JOIN t ON v.key = t.key CROSS JOIN cfg CROSS JOIN vs CROSS JOIN ts
    WHERE cfg.fusion IN ('rrf', 'blend')
       OR semsearch.fail(format('expected fusion ''rrf'' or ''blend'', got %L', cfg.fusion))
    ORDER BY score DESC, coalesce(v.r, 1e9), coalesce(t.r, 1e9)
    LIMIT k
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
