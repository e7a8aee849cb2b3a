-- Documents and passages (migration 0010): a collection's catalog row says how it splits documents,
-- and semsearch.search_documents() returns the best k distinct documents of such a collection.

ALTER TABLE semsearch.collections ADD COLUMN passages jsonb
    CONSTRAINT collections_passages_check CHECK (
        passages IS NULL OR (jsonb_typeof(passages) = 'object' AND passages ->> 'splitter' IN ('default', 'custom'))
    );
COMMENT ON COLUMN semsearch.collections.passages IS
    'documents are split into passages (rows <document key>#<seq>, their place in metadata -> ''semsearch:passage''): the splitter''s settings; NULL: rows are whole texts';

-- The best k distinct documents: passages are searched (vector: query; text: query_text; hybrid: both)
-- for k * 4 (at least 40) rows, 4x more while fewer than k documents came back and more rows exist
-- (the rules of semsearch/passages/grouping.py); each document once, at its best passage's score.
CREATE FUNCTION semsearch.search_documents(
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
COMMENT ON FUNCTION semsearch.search_documents(text, vector, integer, text, jsonb, jsonpath, jsonb, text) IS
    'the best k distinct documents of a collection with passages (vector: query; text: query_text; hybrid: both), each with the passages found (jsonb, best first); candidates widen until k documents are found when k exist. Example: SELECT * FROM semsearch.search_documents(''manuals'', $1::vector, 10, tenant => ''acme'');';
