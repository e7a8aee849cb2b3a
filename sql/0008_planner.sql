-- One planner (migration 0008): semsearch.search() takes its candidates, ef_search and the exact-or-index
-- decision from the planner's functions (semsearch/planner.py), as Python and explain do.

-- The planner's rules as SQL functions (semsearch/planner.py makes them again from its constants at
-- every `semsearch db upgrade`; these are the same rules, for a database between the two)
CREATE FUNCTION semsearch.plan_candidates(k integer, oversample real) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN least(10000, ceil(k * oversample))::integer;

CREATE FUNCTION semsearch.plan_ef_search(requested integer, stored integer, n integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN least(1000, greatest(coalesce(nullif(requested, 0), nullif(stored, 0), 40), n));

CREATE FUNCTION semsearch.plan_exact(matching float8, total float8, n integer) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN total > 0 AND (matching * matching < n * total OR n * total / matching
                      > coalesce(current_setting('hnsw.max_scan_tuples', true)::float8, 20000.0));

-- 0006's search(), its arithmetic replaced by the planner's functions
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

SELECT semsearch.pin_search_paths();
