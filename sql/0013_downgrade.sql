-- Downgrade of migration 0013: search(), text_search(), hybrid_search() and more_like() return rows (passages)
-- again, without passages and without the tenant check; the rows' functions take their names back.

DROP FUNCTION semsearch.search(text, vector, integer, real, integer, boolean, jsonb, jsonpath, jsonb, text, boolean);
DROP FUNCTION semsearch.text_search(text, text, integer, jsonb, jsonpath, jsonb, text, boolean);
DROP FUNCTION semsearch.hybrid_search(text, text, vector, integer, real, real, integer, integer, jsonb, jsonpath, jsonb,
    text, text, boolean);
DROP FUNCTION semsearch.more_like(text, text, integer, real, integer, boolean, jsonb, jsonpath, jsonb, text, boolean);
DROP FUNCTION semsearch.search_documents_of(text, text, integer, boolean, text, vector, text, real, integer, boolean,
    jsonb, jsonpath, jsonb, text, real, real, integer, integer, text);
DROP FUNCTION semsearch.documents_wanted(semsearch.collections, boolean);
DROP FUNCTION semsearch.check_tenant(semsearch.collections, text);
DROP FUNCTION semsearch.hybrid_search_rows(text, text, vector, integer, real, real, integer, integer, jsonb, jsonpath,
    jsonb, text, text, integer);

ALTER FUNCTION semsearch.search_rows(text, vector, integer, real, integer, boolean, jsonb, jsonpath, jsonb, text)
    RENAME TO search;
ALTER FUNCTION semsearch.text_search_rows(text, text, integer, jsonb, jsonpath, jsonb, text) RENAME TO text_search;
COMMENT ON FUNCTION semsearch.search(collection text, query public.vector, k integer, oversample real, ef_search integer, exact boolean, filter jsonb, filter_path jsonpath, filter_vars jsonb, tenant text) IS 'k nearest rows of a collection by cosine similarity of the full vectors: coarse HNSW pass on the compressed copy with oversampling, exact rescore; exact => true scans every (filtered) row. filter: metadata containment (jsonb), filter_path/filter_vars: a jsonpath predicate on metadata. Example: SELECT * FROM semsearch.search(''movies'', ''[0.1, ...]''::vector, 5, filter => ''{"lang": "es"}'');';
COMMENT ON FUNCTION semsearch.text_search(collection text, query_text text, k integer, filter jsonb, filter_path jsonpath, filter_vars jsonb, tenant text) IS 'full-text search: rows containing any of the query''s words (after stemming), ranked by ts_rank normalised by log length; a query of only stop words matches nothing.';

-- hybrid_search() as 0009 made it
CREATE FUNCTION semsearch.hybrid_search(collection text, query_text text, query vector, k integer DEFAULT 10, vector_weight real DEFAULT NULL, text_weight real DEFAULT NULL, rrf_k integer DEFAULT 60, candidates integer DEFAULT NULL, filter jsonb DEFAULT NULL, filter_path jsonpath DEFAULT NULL, filter_vars jsonb DEFAULT NULL, tenant text DEFAULT NULL, fusion text DEFAULT NULL) RETURNS SETOF semsearch.hit LANGUAGE sql AS 'WITH cfg AS MATERIALIZED (SELECT p.* FROM (SELECT semsearch.check_hybrid(k, vector_weight, text_weight, rrf_k, candidates) AS ok) checked, semsearch.plan_hybrid(k, candidates, fusion, vector_weight, text_weight, rrf_k, (SELECT hybrid FROM semsearch.collections WHERE name = collection)) p WHERE checked.ok),
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
COMMENT ON FUNCTION semsearch.hybrid_search(collection text, query_text text, query public.vector, k integer, vector_weight real, text_weight real, rrf_k integer, candidates integer, filter jsonb, filter_path jsonpath, filter_vars jsonb, tenant text, fusion text) IS 'text (BM25) and vector search fused in SQL: fusion ''blend'' (weighted scores scaled to [0, 1] per list) or ''rrf'' (sum of weight/(rrf_k + rank)); unset fusion and weights come from tune_hybrid() or the default.';

-- more_like() as 0007 made it
CREATE FUNCTION semsearch.more_like(
    collection text,
    key text,
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
    c semsearch.collections := semsearch.collection_for_search(collection, tenant, k);
    q vector;
    stored boolean;
BEGIN
    EXECUTE format('SELECT embedding::vector, true FROM semsearch.%I WHERE key = $1 AND ($2::text IS NULL OR tenant = $2) '
                   'LIMIT 1', c.table_name) INTO q, stored USING $2, $10;
    IF stored IS NULL THEN
        RAISE EXCEPTION 'expected a key stored in collection %, got %', quote_literal(collection),
            coalesce(quote_literal($2), 'null') USING ERRCODE = '22023';
    END IF;
    IF q IS NULL THEN
        RAISE EXCEPTION 'expected an embedded row, got % waiting for an embedding: run `semsearch backfill %`',
            quote_literal($2), collection USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
        SELECT h.key, h.content, h.score, h.metadata
        FROM semsearch.search(collection, q, least(k + 1, 10000), oversample, ef_search, exact, filter, filter_path,
                              filter_vars, tenant) h
        WHERE h.key <> $2
        LIMIT k;
END
$fn$;
COMMENT ON FUNCTION semsearch.more_like(collection text, key text, k integer, oversample real, ef_search integer, exact boolean, filter jsonb, filter_path jsonpath, filter_vars jsonb, tenant text) IS 'the k rows nearest to a stored row (by its full vector), the row itself left out; the options are search()''s. Example: SELECT * FROM semsearch.more_like(''movies'', ''m1'', 5);';

-- search_documents() as 0010 made it
CREATE OR REPLACE FUNCTION semsearch.search_documents(
    collection text,
    query vector DEFAULT NULL,
    k integer DEFAULT 10,
    query_text text DEFAULT NULL,
    filter jsonb DEFAULT NULL,
    filter_path jsonpath DEFAULT NULL,
    filter_vars jsonb DEFAULT NULL,
    tenant text DEFAULT NULL
) RETURNS TABLE (key text, content text, score double precision, metadata jsonb, passages jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    n integer;
    found semsearch.hit[];
    docs integer;
BEGIN
    IF search_documents.k IS NULL OR search_documents.k < 1 OR search_documents.k > 10000 THEN
        RAISE EXCEPTION 'expected k between 1 and 10000, got %', search_documents.k USING ERRCODE = '22023';
    END IF;
    IF search_documents.query IS NULL AND search_documents.query_text IS NULL THEN
        RAISE EXCEPTION 'expected query, query_text or both, got neither' USING ERRCODE = '22023';
    END IF;
    n := least(10000, greatest(search_documents.k * 4, 40));
    LOOP
        IF search_documents.query_text IS NULL THEN
            SELECT array_agg(h) INTO found FROM semsearch.search(search_documents.collection, search_documents.query, n,
                filter => search_documents.filter, filter_path => search_documents.filter_path,
                filter_vars => search_documents.filter_vars, tenant => search_documents.tenant) h;
        ELSIF search_documents.query IS NULL THEN
            SELECT array_agg(h) INTO found FROM semsearch.text_search(search_documents.collection,
                search_documents.query_text, n,
                filter => search_documents.filter, filter_path => search_documents.filter_path,
                filter_vars => search_documents.filter_vars, tenant => search_documents.tenant) h;
        ELSE
            SELECT array_agg(h) INTO found FROM semsearch.hybrid_search(search_documents.collection,
                search_documents.query_text, search_documents.query, n,
                filter => search_documents.filter, filter_path => search_documents.filter_path,
                filter_vars => search_documents.filter_vars, tenant => search_documents.tenant) h;
        END IF;
        SELECT count(DISTINCT coalesce(h.metadata -> 'semsearch:passage' ->> 'doc', h.key)) INTO docs
        FROM unnest(found) h;
        EXIT WHEN docs >= search_documents.k OR coalesce(cardinality(found), 0) < n OR n >= 10000;
        n := least(10000, n * 4);
    END LOOP;
    RETURN QUERY
    SELECT g.doc, g.content, g.score, g.metadata - 'semsearch:passage', g.passages
    FROM (
        SELECT x.doc,
               (array_agg(x.content ORDER BY x.ord))[1] AS content,
               (array_agg(x.score ORDER BY x.ord))[1] AS score,
               (array_agg(x.metadata ORDER BY x.ord))[1] AS metadata,
               coalesce(jsonb_agg(jsonb_build_object(
                   'seq', x.place -> 'seq', 'start', x.place -> 'start', 'end', x.place -> 'end',
                   'score', x.score, 'text', x.content) ORDER BY x.ord) FILTER (WHERE x.place IS NOT NULL),
                   '[]'::jsonb) AS passages,
               min(x.ord) AS first
        FROM (SELECT h.key, h.content, h.score, h.metadata, h.ord,
                     h.metadata -> 'semsearch:passage' AS place,
                     coalesce(h.metadata -> 'semsearch:passage' ->> 'doc', h.key) AS doc
              FROM unnest(found) WITH ORDINALITY AS h(key, content, score, metadata, ord)) x
        GROUP BY x.doc
    ) g
    ORDER BY g.first
    LIMIT search_documents.k;
END
$fn$;

SELECT semsearch.pin_search_paths();
