-- Downgrade of 0009: search() as 0008 left it, text_search() as 0002, hybrid_search() as 0006;
-- without plan_hybrid and plan_iterative_scan.

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
    candidates := semsearch.plan_candidates(k, coalesce(oversample, c.oversample));

    IF NOT exact AND f IS NOT NULL THEN
        -- A selective filter starves the index scan: with m of n rows matching it must
        -- visit about candidates*n/m tuples, while an exact scan of the matches (found
        -- through the metadata / tenant indexes) costs about m. The planner's estimate
        -- from pg_statistic decides.
        EXECUTE format('SELECT semsearch.%I($1)', c.table_name || '_matching') INTO matching USING f;
        SELECT reltuples INTO total FROM pg_class WHERE oid = format('semsearch.%I', c.table_name)::regclass;
        exact := semsearch.plan_exact(matching, total, candidates);
    END IF;

    IF NOT exact THEN
        -- HNSW returns at most ef_search rows per scan unless iterative scans continue it
        old_ef := current_setting('hnsw.ef_search', true);
        PERFORM set_config('hnsw.ef_search', semsearch.plan_ef_search(ef_search, c.ef_search, candidates)::text, true);
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
    c semsearch.collections;
BEGIN
    c := semsearch.collection_for_search(collection, tenant, k);
    RETURN QUERY EXECUTE format('SELECT * FROM semsearch.%I($1, $2, $3)', c.table_name || '_text')
        USING coalesce(query_text, ''), k, semsearch.filter_spec(filter, filter_path, filter_vars, tenant);
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

DROP FUNCTION semsearch.plan_hybrid(integer, integer, text, real, real, integer, jsonb);
DROP FUNCTION semsearch.plan_iterative_scan(boolean);

SELECT semsearch.pin_search_paths();
