-- Downgrade of migration 0015: search_rows() and search() as 0014 left them (each reads the catalog row, the
-- unfiltered index pass planned for every call), and no search_rows_of(). Their comments stay (CREATE OR REPLACE
-- keeps a function's oid); their search paths are pinned again below.

CREATE OR REPLACE FUNCTION semsearch.search_rows(
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
    f jsonb := CASE WHEN filter IS NOT NULL OR filter_path IS NOT NULL OR filter_vars IS NOT NULL OR tenant IS NOT NULL
                    THEN semsearch.filter_spec(filter, filter_path, filter_vars, tenant) END;
    candidates integer;
    matching float8;
    total float8;
    old_ef text;
    old_iter text;
    ef integer;
    iter text;
    made text;
    -- a DEBUG message goes somewhere only at these levels (log_min_messages may name levels per process type)
    traced boolean := current_setting('client_min_messages') LIKE 'debug%'
                      OR current_setting('log_min_messages') LIKE '%debug%';
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
        made := set_config('hnsw.ef_search', ef::text, true);
        -- relaxed order is free here: the rescore re-sorts exactly (pgvector >= 0.8 has the setting)
        old_iter := current_setting('hnsw.iterative_scan', true);
        iter := CASE WHEN old_iter IS NOT NULL THEN semsearch.plan_iterative_scan(f IS NOT NULL) END;
        IF iter IS NOT NULL THEN
            made := set_config('hnsw.iterative_scan', iter, true);
        END IF;
        -- what runs, for a client that asks (SET client_min_messages = debug1): explain shows the same
        IF traced THEN
            RAISE DEBUG 'semsearch plan %', jsonb_build_object('function', c.table_name || '_ann', 'k', k,
                'candidates', candidates, 'spec', f, 'settings',
                jsonb_strip_nulls(jsonb_build_object('hnsw.ef_search', ef::text, 'hnsw.iterative_scan', iter)));
        END IF;
        -- the function's rows in its order (its statement ends in ORDER BY ... LIMIT)
        EXECUTE format('SELECT ARRAY(SELECT h FROM semsearch.%I($1, $2, $3, $4) h)', c.table_name || '_ann')
            INTO hits USING query, k, candidates, f;
        made := set_config('hnsw.ef_search', coalesce(old_ef, '40'), true);
        IF iter IS NOT NULL THEN
            made := set_config('hnsw.iterative_scan', old_iter, true);
        END IF;
    END IF;

    -- the approximate pass may miss rows (filters, scan limits, dead tuples); when it
    -- found fewer than k the exact pass decides, so fewer than k means fewer exist
    IF exact OR coalesce(cardinality(hits), 0) < k THEN
        IF traced THEN
            RAISE DEBUG 'semsearch plan %', jsonb_build_object('function', c.table_name || '_exact', 'k', k,
                'spec', f, 'settings', '{}'::jsonb);
        END IF;
        RETURN QUERY EXECUTE format('SELECT * FROM semsearch.%I($1, $2, $3)', c.table_name || '_exact')
            USING query, k, f;
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM unnest(hits);
END
$fn$;

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
    tenant text DEFAULT NULL,
    passages boolean DEFAULT false
) RETURNS SETOF semsearch.hit
LANGUAGE plpgsql
AS $fn$
DECLARE
    c semsearch.collections := semsearch.collection_for_search(collection, tenant, k);
BEGIN
    -- documents_wanted() refuses passages => true without passages: asked only when passages are in play
    IF (CASE WHEN passages OR c.passages IS NOT NULL THEN semsearch.documents_wanted(c, passages) ELSE false END) THEN
        RETURN QUERY SELECT * FROM semsearch.search_documents_of('vector', collection, k, false, NULL, query, NULL,
            oversample, ef_search, exact, filter, filter_path, filter_vars, tenant);
    ELSE
        RETURN QUERY SELECT * FROM semsearch.search_rows(collection, query, k, oversample, ef_search, exact, filter,
            filter_path, filter_vars, tenant);
    END IF;
    IF NOT FOUND THEN
        PERFORM semsearch.check_tenant(c, tenant);
    END IF;
END
$fn$;

DROP FUNCTION semsearch.search_rows_of(semsearch.collections, vector, integer, real, integer, boolean, jsonb,
    jsonpath, jsonb, text);

SELECT semsearch.pin_search_paths();
