-- Documents from the SQL functions (migration 0013): on a collection with passages, search(), text_search(),
-- hybrid_search() and more_like() return the best k distinct documents, as Python does (passages => true:
-- the best k passages); a search by a tenant that finds nothing in a collection where no row has a tenant
-- raises, as Python and the CLI do.
--
-- The row-level searches are kept under new names: search_rows() and text_search_rows() (0009's search()
-- and text_search(), renamed) and hybrid_search_rows() (planner.hybrid_function(), made again at every
-- `semsearch db upgrade`) return rows as stored (passages). The functions callers know keep their
-- names and arguments (one more at the end: passages) and their return type (semsearch.hit): on a
-- collection without passages they return what the rows' functions return.

ALTER FUNCTION semsearch.search(text, vector, integer, real, integer, boolean, jsonb, jsonpath, jsonb, text)
    RENAME TO search_rows;
COMMENT ON FUNCTION semsearch.search_rows(text, vector, integer, real, integer, boolean, jsonb, jsonpath, jsonb, text) IS
    'search() over the rows as stored (a collection with passages: its passages); search() calls it.';
ALTER FUNCTION semsearch.text_search(text, text, integer, jsonb, jsonpath, jsonb, text) RENAME TO text_search_rows;
COMMENT ON FUNCTION semsearch.text_search_rows(text, text, integer, jsonb, jsonpath, jsonb, text) IS
    'text_search() over the rows as stored (a collection with passages: its passages); text_search() calls it.';
DROP FUNCTION semsearch.hybrid_search(text, text, vector, integer, real, real, integer, integer, jsonb, jsonpath, jsonb,
    text, text);
DROP FUNCTION semsearch.more_like(text, text, integer, real, integer, boolean, jsonb, jsonpath, jsonb, text);

-- hybrid_search() over the rows as stored: planner.hybrid_function() (made again at every `semsearch db upgrade`)
CREATE FUNCTION semsearch.hybrid_search_rows(collection text, query_text text, query vector, k integer DEFAULT 10, vector_weight real DEFAULT NULL, text_weight real DEFAULT NULL, rrf_k integer DEFAULT 60, candidates integer DEFAULT NULL, filter jsonb DEFAULT NULL, filter_path jsonpath DEFAULT NULL, filter_vars jsonb DEFAULT NULL, tenant text DEFAULT NULL, fusion text DEFAULT NULL, lists_for integer DEFAULT NULL) RETURNS SETOF semsearch.hit LANGUAGE sql AS 'WITH cfg AS MATERIALIZED (SELECT p.* FROM (SELECT semsearch.check_hybrid(k, vector_weight, text_weight, rrf_k, candidates) AS ok) checked, semsearch.plan_hybrid(coalesce(lists_for, k), candidates, fusion, vector_weight, text_weight, rrf_k, (SELECT hybrid FROM semsearch.collections WHERE name = collection)) p WHERE checked.ok),
v AS (SELECT h.key, h.content, h.score, h.metadata, row_number() OVER () AS r FROM (SELECT h.* FROM cfg, semsearch.search_rows(collection, query, cfg.list_size, filter => filter, filter_path => filter_path, filter_vars => filter_vars, tenant => tenant) h) h),
t AS (SELECT h.key, h.content, h.score, h.metadata, row_number() OVER () AS r FROM (SELECT h.* FROM cfg, semsearch.text_search_rows(collection, query_text, cfg.list_size, filter => filter, filter_path => filter_path, filter_vars => filter_vars, tenant => tenant) h) h),
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
LIMIT k'
;
COMMENT ON FUNCTION semsearch.hybrid_search_rows(text, text, vector, integer, real, real, integer, integer, jsonb,
    jsonpath, jsonb, text, text, integer) IS
    'hybrid_search() over the rows as stored (a collection with passages: its passages); hybrid_search() calls it. lists_for (NULL: k) sizes the fused lists as for a search of that many rows.';

-- A search by a tenant found nothing: raise when no row of the collection has a tenant (tenant => could never
-- match), as Python's guards.check_tenants does. Not where tenants are there by definition (required,
-- isolated, the distribution column). Called only when a search came back empty: free on the normal path.
CREATE FUNCTION semsearch.check_tenant(c semsearch.collections, tenant text) RETURNS void
LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
    any_tenant boolean;
BEGIN
    IF tenant IS NULL OR c.tenant_required OR c.tenant_setting IS NOT NULL OR c.distributed_by IS NOT DISTINCT FROM 'tenant' THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT FROM semsearch.%I WHERE tenant IS NOT NULL)', c.table_name) INTO any_tenant;
    IF NOT any_tenant THEN
        RAISE EXCEPTION 'expected rows with tenants to search collection % with tenant %, got none with a tenant '
            '(rows get one from add(..., tenant=), a "tenant" key of add_many, ingest''s tenant field)',
            quote_literal(c.name), quote_literal(tenant) USING ERRCODE = '22023';
    END IF;
END
$fn$;

-- The best k distinct documents (passages: the best k passages) of a collection with passages, the document
-- `exclude` left out: passages are searched (mode 'vector', 'text' or 'hybrid') for k * 4 (at least 40) rows
-- (passages: k), 4x more while fewer than k documents (passages) came back and more rows exist: the rules of
-- semsearch/passages/grouping.py, whose lists_for() sizes a hybrid search's lists (n passages each, not 4n: they
-- hold 4x the documents wanted, as a row search's lists hold 4x the rows). A document is its best passage's row
-- with the document's key: that passage's text, score and metadata (its place under 'semsearch:passage': doc,
-- seq, start, end). One home for the functions below.
CREATE FUNCTION semsearch.search_documents_of(
    mode text,
    collection text,
    k integer,
    passages boolean,
    exclude text,
    query vector,
    query_text text,
    oversample real,
    ef_search integer,
    exact boolean,
    filter jsonb,
    filter_path jsonpath,
    filter_vars jsonb,
    tenant text,
    vector_weight real DEFAULT NULL,
    text_weight real DEFAULT NULL,
    rrf_k integer DEFAULT 60,
    candidates integer DEFAULT NULL,
    fusion text DEFAULT NULL
) RETURNS SETOF semsearch.hit
LANGUAGE plpgsql
AS $fn$
DECLARE
    n integer := CASE WHEN passages THEN k ELSE least(10000, greatest(k * 4, 40)) END;
    found semsearch.hit[];
    got integer;
BEGIN
    LOOP
        IF mode = 'vector' THEN
            SELECT array_agg(h) INTO found FROM semsearch.search_rows(collection, query, n, oversample, ef_search,
                exact, filter, filter_path, filter_vars, tenant) h;
        ELSIF mode = 'text' THEN
            SELECT array_agg(h) INTO found FROM semsearch.text_search_rows(collection, query_text, n, filter,
                filter_path, filter_vars, tenant) h;
        ELSE
            SELECT array_agg(h) INTO found FROM semsearch.hybrid_search_rows(collection, query_text, query, n,
                vector_weight, text_weight, rrf_k, candidates, filter, filter_path, filter_vars, tenant, fusion,
                lists_for => CASE WHEN passages THEN n ELSE greatest(1, n / 4) END) h;
        END IF;
        SELECT CASE WHEN passages THEN count(*) ELSE count(DISTINCT d.doc) END INTO got
        FROM (SELECT coalesce(h.metadata -> 'semsearch:passage' ->> 'doc', h.key) AS doc FROM unnest(found) h) d
        WHERE d.doc IS DISTINCT FROM exclude;
        EXIT WHEN got >= k OR coalesce(cardinality(found), 0) < n OR n >= 10000;
        n := least(10000, n * 4);
    END LOOP;
    IF passages THEN
        RETURN QUERY
        SELECT h.key, h.content, h.score, h.metadata
        FROM unnest(found) WITH ORDINALITY AS h(key, content, score, metadata, ord)
        WHERE coalesce(h.metadata -> 'semsearch:passage' ->> 'doc', h.key) IS DISTINCT FROM exclude
        ORDER BY h.ord
        LIMIT k;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT g.doc, g.content, g.score, g.metadata
    FROM (
        SELECT x.doc,
               (array_agg(x.content ORDER BY x.ord))[1] AS content,
               (array_agg(x.score ORDER BY x.ord))[1] AS score,
               (array_agg(x.metadata ORDER BY x.ord))[1] AS metadata,
               min(x.ord) AS first
        FROM (SELECT h.content, h.score, h.metadata, h.ord,
                     coalesce(h.metadata -> 'semsearch:passage' ->> 'doc', h.key) AS doc
              FROM unnest(found) WITH ORDINALITY AS h(key, content, score, metadata, ord)) x
        WHERE x.doc IS DISTINCT FROM exclude
        GROUP BY x.doc
    ) g
    ORDER BY g.first
    LIMIT k;
END
$fn$;

-- passages => true on a collection without passages: refused, as Python refuses passages=True there
CREATE FUNCTION semsearch.documents_wanted(c semsearch.collections, passages boolean) RETURNS boolean
LANGUAGE plpgsql STABLE
AS $fn$
BEGIN
    IF passages AND c.passages IS NULL THEN
        RAISE EXCEPTION 'expected a collection with passages for passages => true, got %', quote_literal(c.name)
            USING ERRCODE = '22023';
    END IF;
    RETURN c.passages IS NOT NULL AND NOT coalesce(passages, false);
END
$fn$;

CREATE FUNCTION semsearch.search(
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
    IF semsearch.documents_wanted(c, passages) THEN
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
COMMENT ON FUNCTION semsearch.search(text, vector, integer, real, integer, boolean, jsonb, jsonpath, jsonb, text, boolean) IS
    'k nearest rows of a collection by cosine similarity of the full vectors: coarse HNSW pass on the compressed copy with oversampling, exact rescore; exact => true scans every (filtered) row. filter: metadata containment (jsonb), filter_path/filter_vars: a jsonpath predicate on metadata. A collection with passages returns the best k distinct documents (key: the document''s; content, score and metadata: its best passage''s, whose place is metadata -> ''semsearch:passage''), passages => true the best k passages. Example: SELECT * FROM semsearch.search(''movies'', ''[0.1, ...]''::vector, 5, filter => ''{"lang": "es"}'');';

CREATE FUNCTION semsearch.text_search(
    collection text,
    query_text text,
    k integer DEFAULT 10,
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
    IF semsearch.documents_wanted(c, passages) THEN
        RETURN QUERY SELECT * FROM semsearch.search_documents_of('text', collection, k, false, NULL, NULL, query_text,
            NULL, NULL, false, filter, filter_path, filter_vars, tenant);
    ELSE
        RETURN QUERY SELECT * FROM semsearch.text_search_rows(collection, query_text, k, filter, filter_path,
            filter_vars, tenant);
    END IF;
    IF NOT FOUND THEN
        PERFORM semsearch.check_tenant(c, tenant);
    END IF;
END
$fn$;
COMMENT ON FUNCTION semsearch.text_search(text, text, integer, jsonb, jsonpath, jsonb, text, boolean) IS
    'full-text search: rows containing any of the query''s words (after stemming), ranked by BM25; a query of only stop words matches nothing. A collection with passages returns the best k distinct documents (as search() does), passages => true the best k passages. Example: SELECT * FROM semsearch.text_search(''manuals'', ''reset the router'', 5);';

CREATE FUNCTION semsearch.hybrid_search(
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
    fusion text DEFAULT NULL,
    passages boolean DEFAULT false
) RETURNS SETOF semsearch.hit
LANGUAGE plpgsql
AS $fn$
DECLARE
    c semsearch.collections := semsearch.collection_for_search(collection, tenant, k);
BEGIN
    IF semsearch.documents_wanted(c, passages) THEN
        RETURN QUERY SELECT * FROM semsearch.search_documents_of('hybrid', collection, k, false, NULL, query,
            query_text, NULL, NULL, false, filter, filter_path, filter_vars, tenant, vector_weight, text_weight, rrf_k,
            candidates, fusion);
    ELSE
        RETURN QUERY SELECT * FROM semsearch.hybrid_search_rows(collection, query_text, query, k, vector_weight,
            text_weight, rrf_k, candidates, filter, filter_path, filter_vars, tenant, fusion);
    END IF;
    IF NOT FOUND THEN
        PERFORM semsearch.check_tenant(c, tenant);
    END IF;
END
$fn$;
COMMENT ON FUNCTION semsearch.hybrid_search(text, text, vector, integer, real, real, integer, integer, jsonb, jsonpath,
    jsonb, text, text, boolean) IS
    'text (BM25) and vector search fused in SQL: fusion ''blend'' (weighted scores scaled to [0, 1] per list) or ''rrf'' (sum of weight/(rrf_k + rank)); unset fusion and weights come from tune_hybrid() or the default. A collection with passages returns the best k distinct documents (as search() does), passages => true the best k passages.';

-- "More like this": search() with the stored row's full vector, the row itself left out; in a collection with
-- passages key is a document's: the mean of its passages' vectors, every passage of it left out.
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
    tenant text DEFAULT NULL,
    passages boolean DEFAULT false
) RETURNS SETOF semsearch.hit
LANGUAGE plpgsql
AS $fn$
DECLARE
    c semsearch.collections := semsearch.collection_for_search(collection, tenant, k);
    documents boolean := semsearch.documents_wanted(c, passages);
    q vector;
    stored bigint;
BEGIN
    IF c.passages IS NULL THEN
        EXECUTE format('SELECT embedding::vector, 1 FROM semsearch.%I WHERE key = $1 AND ($2::text IS NULL OR tenant = $2) '
                       'LIMIT 1', c.table_name) INTO q, stored USING more_like.key, more_like.tenant;
    ELSE
        EXECUTE format('SELECT avg(embedding::vector), count(*) FROM semsearch.%I WHERE metadata @> $1 '
                       'AND ($2::text IS NULL OR tenant = $2)', c.table_name) INTO q, stored
            USING jsonb_build_object('semsearch:passage', jsonb_build_object('doc', more_like.key)), more_like.tenant;
    END IF;
    IF coalesce(stored, 0) = 0 THEN
        RAISE EXCEPTION 'expected a key stored in collection %, got %', quote_literal(collection),
            coalesce(quote_literal(more_like.key), 'null') USING ERRCODE = '22023';
    END IF;
    IF q IS NULL THEN
        RAISE EXCEPTION 'expected an embedded row, got % waiting for an embedding: run `semsearch backfill %`',
            quote_literal(more_like.key), collection USING ERRCODE = '22023';
    END IF;
    IF c.passages IS NULL THEN
        RETURN QUERY
            SELECT h.key, h.content, h.score, h.metadata
            FROM semsearch.search_rows(collection, q, least(k + 1, 10000), oversample, ef_search, exact, filter,
                                       filter_path, filter_vars, tenant) h
            WHERE h.key <> more_like.key
            LIMIT k;
    ELSE
        RETURN QUERY SELECT * FROM semsearch.search_documents_of('vector', collection, k, NOT documents,
            more_like.key, q, NULL, oversample, ef_search, exact, filter, filter_path, filter_vars, tenant);
    END IF;
END
$fn$;
COMMENT ON FUNCTION semsearch.more_like(text, text, integer, real, integer, boolean, jsonb, jsonpath, jsonb, text, boolean) IS
    'the k rows nearest to a stored row (by its full vector), the row itself left out; the options are search()''s. In a collection with passages key is a document''s: the k documents (passages => true: passages) nearest to the mean of its passages'' vectors, the document left out. Example: SELECT * FROM semsearch.more_like(''movies'', ''m1'', 5);';

-- 0010's search_documents() on the rows' functions (search() and friends return documents now)
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
            SELECT array_agg(h) INTO found FROM semsearch.search_rows(search_documents.collection, search_documents.query, n,
                filter => search_documents.filter, filter_path => search_documents.filter_path,
                filter_vars => search_documents.filter_vars, tenant => search_documents.tenant) h;
        ELSIF search_documents.query IS NULL THEN
            SELECT array_agg(h) INTO found FROM semsearch.text_search_rows(search_documents.collection,
                search_documents.query_text, n,
                filter => search_documents.filter, filter_path => search_documents.filter_path,
                filter_vars => search_documents.filter_vars, tenant => search_documents.tenant) h;
        ELSE
            SELECT array_agg(h) INTO found FROM semsearch.hybrid_search_rows(search_documents.collection,
                search_documents.query_text, search_documents.query, n,
                filter => search_documents.filter, filter_path => search_documents.filter_path,
                filter_vars => search_documents.filter_vars, tenant => search_documents.tenant,
                lists_for => greatest(1, n / 4)) h;
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
