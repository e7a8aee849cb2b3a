-- One planner, finished (migration 0009): hybrid search's list sizes, fusion and weights come from
-- semsearch.plan_hybrid and the iterative scan from semsearch.plan_iterative_scan, the SQL twins of
-- semsearch/planner.py's rules; hybrid_search() is planner.hybrid_function() (statements.fused over
-- search() and text_search()), the statement explain shows with the lists inline. search() and
-- text_search() say what they run as a DEBUG message (SET client_min_messages = debug1 to see it).

-- The planner's functions as semsearch/planner.py makes them (again at every `semsearch db upgrade`)
CREATE OR REPLACE FUNCTION semsearch.plan_iterative_scan(filtered boolean) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp RETURN CASE WHEN filtered THEN 'relaxed_order' END;

CREATE OR REPLACE FUNCTION semsearch.plan_hybrid(k integer, requested_candidates integer, requested_fusion text, requested_vector_weight real, requested_text_weight real, requested_rrf_k integer, tuned jsonb, OUT fusion text, OUT vector_weight float8, OUT text_weight float8, OUT list_size integer, OUT rrf_k integer) LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS 'SELECT c.f, coalesce(requested_vector_weight, (tuned ->> ''vector_weight'')::real, 0.3)::numeric::float8, coalesce(requested_text_weight, (tuned ->> ''text_weight'')::real, 0.7)::numeric::float8, least(10000, greatest(coalesce(requested_candidates, 0), 4 * k, 40)), requested_rrf_k FROM (SELECT coalesce(requested_fusion, tuned ->> ''fusion'', ''blend'') AS f) c WHERE c.f IN (''blend'', ''rrf'') OR semsearch.fail(format(''expected fusion ''''rrf'''' or ''''blend'''', got %L'', c.f))';

CREATE OR REPLACE FUNCTION semsearch.hybrid_search(collection text, query_text text, query vector, k integer DEFAULT 10, vector_weight real DEFAULT NULL, text_weight real DEFAULT NULL, rrf_k integer DEFAULT 60, candidates integer DEFAULT NULL, filter jsonb DEFAULT NULL, filter_path jsonpath DEFAULT NULL, filter_vars jsonb DEFAULT NULL, tenant text DEFAULT NULL, fusion text DEFAULT NULL) RETURNS SETOF semsearch.hit LANGUAGE sql AS 'WITH cfg AS MATERIALIZED (SELECT p.* FROM (SELECT semsearch.check_hybrid(k, vector_weight, text_weight, rrf_k, candidates) AS ok) checked, semsearch.plan_hybrid(k, candidates, fusion, vector_weight, text_weight, rrf_k, (SELECT hybrid FROM semsearch.collections WHERE name = collection)) p WHERE checked.ok),
v AS (SELECT h.key, h.content, h.score, h.metadata, row_number() OVER () AS r FROM (SELECT h.* FROM cfg, semsearch.search(collection, query, cfg.list_size, filter => filter, filter_path => filter_path, filter_vars => filter_vars, tenant => tenant) h) h),
t AS (SELECT h.key, h.content, h.score, h.metadata, row_number() OVER () AS r FROM (SELECT h.* FROM cfg, semsearch.text_search(collection, query_text, cfg.list_size, filter => filter, filter_path => filter_path, filter_vars => filter_vars, tenant => tenant) h) h),
vs AS (SELECT max(score) AS hi, min(score) AS lo FROM v),
ts AS (SELECT max(score) AS hi, min(score) AS lo FROM t)
SELECT coalesce(v.key, t.key) AS key, coalesce(v.content, t.content) AS content,
       (CASE cfg.fusion
            WHEN ''rrf'' THEN coalesce(cfg.vector_weight / (cfg.rrf_k + v.r), 0)
                          + coalesce(cfg.text_weight / (cfg.rrf_k + t.r), 0)
            ELSE CASE WHEN v.key IS NULL THEN 0
                      ELSE cfg.vector_weight * coalesce((v.score - vs.lo) / nullif(vs.hi - vs.lo, 0), 1) END
               + CASE WHEN t.key IS NULL THEN 0
                      ELSE cfg.text_weight * coalesce((t.score - ts.lo) / nullif(ts.hi - ts.lo, 0), 1) END
        END)::float8 AS score,
       coalesce(v.metadata, t.metadata) AS metadata
FROM v FULL JOIN t ON v.key = t.key CROSS JOIN cfg CROSS JOIN vs CROSS JOIN ts
ORDER BY score DESC, coalesce(v.r, 1e9), coalesce(t.r, 1e9)
LIMIT k';

-- 0008's search(), its iterative scan from the planner, saying what it runs
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
    ef integer;
    iter text;
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
        ef := semsearch.plan_ef_search(ef_search, c.ef_search, candidates);
        old_ef := current_setting('hnsw.ef_search', true);
        PERFORM set_config('hnsw.ef_search', ef::text, true);
        -- relaxed order is free here: the rescore re-sorts exactly (pgvector >= 0.8 has the setting)
        old_iter := current_setting('hnsw.iterative_scan', true);
        iter := CASE WHEN old_iter IS NOT NULL THEN semsearch.plan_iterative_scan(f IS NOT NULL) END;
        IF iter IS NOT NULL THEN
            PERFORM set_config('hnsw.iterative_scan', iter, true);
        END IF;
        -- what runs, for a client that asks (SET client_min_messages = debug1): explain shows the same
        RAISE DEBUG 'semsearch plan %', jsonb_build_object('function', c.table_name || '_ann', 'k', k,
            'candidates', candidates, 'spec', f, 'settings',
            jsonb_strip_nulls(jsonb_build_object('hnsw.ef_search', ef::text, 'hnsw.iterative_scan', iter)));
        EXECUTE format('SELECT array_agg(ROW(h.key, h.content, h.score, h.metadata)::semsearch.hit ORDER BY h.o) '
                       'FROM semsearch.%I($1, $2, $3, $4) WITH ORDINALITY h(key, content, score, metadata, o)',
                       c.table_name || '_ann')
            INTO hits USING query, k, candidates, f;
        PERFORM set_config('hnsw.ef_search', coalesce(old_ef, '40'), true);
        IF iter IS NOT NULL THEN
            PERFORM set_config('hnsw.iterative_scan', old_iter, true);
        END IF;
    END IF;

    -- the approximate pass may miss rows (filters, scan limits, dead tuples); when it
    -- found fewer than k the exact pass decides, so fewer than k means fewer exist
    IF exact OR coalesce(cardinality(hits), 0) < k THEN
        RAISE DEBUG 'semsearch plan %', jsonb_build_object('function', c.table_name || '_exact', 'k', k,
            'spec', f, 'settings', '{}'::jsonb);
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
    spec jsonb := semsearch.filter_spec(filter, filter_path, filter_vars, tenant);
BEGIN
    c := semsearch.collection_for_search(collection, tenant, k);
    RAISE DEBUG 'semsearch plan %', jsonb_build_object('function', c.table_name || '_text', 'k', k,
        'spec', spec, 'settings', '{}'::jsonb);
    RETURN QUERY EXECUTE format('SELECT * FROM semsearch.%I($1, $2, $3)', c.table_name || '_text')
        USING coalesce(query_text, ''), k, spec;
END
$fn$;

SELECT semsearch.pin_search_paths();
