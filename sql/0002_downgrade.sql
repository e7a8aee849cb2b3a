-- Downgrade of 0002: the 0.1.0 bodies of the functions 0002 replaced (copied from 0001_search.sql).

CREATE OR REPLACE FUNCTION semsearch.filter_spec(
    filter jsonb, filter_path jsonpath, filter_vars jsonb, tenant text
) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(jsonb_strip_nulls(jsonb_build_object(
    'contains', filter, 'path', filter_path::text, 'vars', filter_vars, 'tenant', tenant)), '{}'::jsonb);

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
    plan json;
    matching float8;
    total float8;
    old_ef text;
    old_iter text;
BEGIN
    IF k IS NULL OR k < 1 OR k > 10000 THEN
        RAISE EXCEPTION 'expected k between 1 and 10000, got %', k USING ERRCODE = '22023';
    END IF;
    IF oversample IS NOT NULL AND (oversample < 1 OR oversample > 1000) THEN
        RAISE EXCEPTION 'expected oversample between 1 and 1000, got %', oversample USING ERRCODE = '22023';
    END IF;
    IF ef_search IS NOT NULL AND (ef_search < 1 OR ef_search > 1000) THEN
        RAISE EXCEPTION 'expected ef_search between 1 and 1000, got %', ef_search USING ERRCODE = '22023';
    END IF;
    SELECT * INTO c FROM semsearch.collections WHERE name = collection;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown collection %', quote_literal(collection) USING ERRCODE = '42704';
    END IF;
    IF query IS NULL OR vector_dims(query) <> c.dims THEN
        RAISE EXCEPTION 'expected a query vector of % dims, got %', c.dims, vector_dims(query)
            USING ERRCODE = '22023';
    END IF;
    IF filter IS NOT NULL AND jsonb_typeof(filter) <> 'object' THEN
        RAISE EXCEPTION 'expected filter as a json object, got %', jsonb_typeof(filter) USING ERRCODE = '22023';
    END IF;
    candidates := ceil(k * coalesce(oversample, c.oversample))::integer;

    IF NOT exact AND f IS NOT NULL THEN
        -- A selective filter starves the index scan: with m of n rows matching it must
        -- visit about candidates*n/m tuples, while an exact scan of the matches (found
        -- through the metadata / tenant indexes) costs about m. The planner's estimate
        -- from pg_statistic decides.
        EXECUTE 'EXPLAIN (FORMAT JSON) ' || c.count_sql INTO plan USING f;
        matching := greatest((plan -> 0 -> 'Plan' ->> 'Plan Rows')::float8, 1);
        SELECT reltuples INTO total FROM pg_class
            WHERE oid = format('semsearch.%I', c.table_name)::regclass;
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
        IF old_iter IS NOT NULL THEN
            PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
        END IF;
        EXECUTE c.ann_sql INTO hits USING query, k, candidates, f;
        PERFORM set_config('hnsw.ef_search', coalesce(old_ef, '40'), true);
        IF old_iter IS NOT NULL THEN
            PERFORM set_config('hnsw.iterative_scan', old_iter, true);
        END IF;
    END IF;

    -- the approximate pass may miss rows (filters, scan limits, dead tuples); when it
    -- found fewer than k the exact pass decides, so fewer than k means fewer exist
    IF exact OR cardinality(hits) < k THEN
        EXECUTE c.exact_sql INTO hits USING query, k, f;
    END IF;
    RETURN QUERY SELECT * FROM unnest(hits);
END
$fn$;

CREATE OR REPLACE FUNCTION semsearch.text_search(
    collection text,
    query_text text,
    k integer DEFAULT 10,
    filter jsonb DEFAULT NULL,
    filter_path jsonpath DEFAULT NULL,
    filter_vars jsonb DEFAULT NULL,
    tenant text DEFAULT NULL
) RETURNS SETOF semsearch.hit
LANGUAGE plpgsql
AS $fn$
DECLARE
    sql_text text;
    hits semsearch.hit[];
BEGIN
    IF k IS NULL OR k < 1 OR k > 10000 THEN
        RAISE EXCEPTION 'expected k between 1 and 10000, got %', k USING ERRCODE = '22023';
    END IF;
    SELECT text_sql INTO sql_text FROM semsearch.collections WHERE name = collection;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown collection %', quote_literal(collection) USING ERRCODE = '42704';
    END IF;
    EXECUTE sql_text INTO hits USING coalesce(query_text, ''), k,
        semsearch.filter_spec(filter, filter_path, filter_vars, tenant);
    RETURN QUERY SELECT * FROM unnest(hits);
END
$fn$;

CREATE OR REPLACE FUNCTION semsearch.drop_collection(collection text) RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
    t text;
BEGIN
    DELETE FROM semsearch.collections WHERE name = collection RETURNING table_name INTO t;
    IF t IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS semsearch.%I', t);
    RETURN true;
END
$fn$;

CREATE OR REPLACE FUNCTION semsearch.reset_stale_embedding() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW.embedding := NULL; RETURN NEW; END $$;

DROP FUNCTION semsearch.hybrid_search(text, text, vector, integer, real, real, integer, integer, jsonb, jsonpath,
                                      jsonb, text, text);
DROP FUNCTION semsearch.fail(text);
CREATE FUNCTION semsearch.hybrid_search(
    collection text,
    query_text text,
    query vector,
    k integer DEFAULT 10,
    vector_weight real DEFAULT 1,
    text_weight real DEFAULT 1,
    rrf_k integer DEFAULT 60,
    candidates integer DEFAULT NULL,
    filter jsonb DEFAULT NULL,
    filter_path jsonpath DEFAULT NULL,
    filter_vars jsonb DEFAULT NULL,
    tenant text DEFAULT NULL
) RETURNS SETOF semsearch.hit
LANGUAGE sql
AS $fn$
    -- reciprocal-rank fusion: each list contributes weight / (rrf_k + rank)
    WITH n AS (SELECT greatest(coalesce(candidates, 0), k * 4, 40) AS n),
    v AS (
        SELECT h.*, row_number() OVER () AS r
        FROM n, semsearch.search(collection, query, n.n, filter => filter, filter_path => filter_path,
                                 filter_vars => filter_vars, tenant => tenant) h
    ),
    t AS (
        SELECT h.*, row_number() OVER () AS r
        FROM n, semsearch.text_search(collection, query_text, n.n, filter, filter_path, filter_vars, tenant) h
    )
    SELECT coalesce(v.key, t.key), coalesce(v.content, t.content),
           (coalesce(vector_weight / (rrf_k + v.r), 0) + coalesce(text_weight / (rrf_k + t.r), 0))::float8 AS score,
           coalesce(v.metadata, t.metadata)
    FROM v FULL JOIN t ON v.key = t.key
    ORDER BY score DESC, coalesce(v.r, 1e9), coalesce(t.r, 1e9)
    LIMIT k
$fn$;
