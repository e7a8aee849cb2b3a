-- Everyday calls (migration 0007): rows by key, a count by filter, "more like this" from SQL.
-- Every function runs as its caller (SECURITY INVOKER): grants on a collection's table and its
-- tenant policies decide what a role gets, and row-level security on the catalog (0006) makes a
-- collection the role was not granted an unknown one.
--
-- Pages and thresholds need no function: a search's SETOF result takes SQL's own clauses, with
-- k the page's end, e.g. the second page of 10 scoring at least 0.3:
--   SELECT * FROM semsearch.search('docs', q, 20) WHERE score >= 0.3 OFFSET 10;
-- and many queries in one statement join the search laterally:
--   SELECT q.i, h.* FROM unnest($1::vector[]) WITH ORDINALITY q(v, i),
--                        LATERAL semsearch.search('docs', q.v, 5) h;

-- A stored row as semsearch.get() returns it (embedded: false while it waits for backfill)
CREATE TYPE semsearch.stored_row AS (key text, content text, metadata jsonb, tenant text, embedded boolean);

-- The catalog row of a collection the caller may see, or the search functions' "unknown collection".
CREATE FUNCTION semsearch.collection_named(collection text) RETURNS semsearch.collections
LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
    c semsearch.collections;
BEGIN
    SELECT * INTO c FROM semsearch.collections WHERE name = collection;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown collection %', quote_literal(collection) USING ERRCODE = '42704';
    END IF;
    RETURN c;
END
$fn$;

-- The rows with these keys, in the order given, each once; a key not stored is absent.
CREATE FUNCTION semsearch.get(collection text, keys text[], tenant text DEFAULT NULL)
RETURNS SETOF semsearch.stored_row
LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
    c semsearch.collections := semsearch.collection_named(collection);
BEGIN
    IF keys IS NULL OR cardinality(keys) > 10000 THEN
        RAISE EXCEPTION 'expected keys as an array of at most 10000 keys, got %',
            coalesce(cardinality(keys)::text || ' keys', 'null') USING ERRCODE = '22023';
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT key, content, metadata, tenant, embedding IS NOT NULL FROM semsearch.%I '
        'WHERE key = ANY($1) AND ($2::text IS NULL OR tenant = $2) ORDER BY array_position($1, key), tenant',
        c.table_name) USING keys, tenant;
END
$fn$;

-- How many rows (embedded or pending) a search's filter keeps: filter (containment), filter_path and
-- filter_vars (a jsonpath predicate) and tenant, as semsearch.search() takes them. The condition is
-- semsearch/statements.py's spec_filter() (a test keeps the two equal).
CREATE FUNCTION semsearch.count(
    collection text,
    filter jsonb DEFAULT NULL,
    filter_path jsonpath DEFAULT NULL,
    filter_vars jsonb DEFAULT NULL,
    tenant text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
    c semsearch.collections := semsearch.collection_named(collection);
    n bigint;
BEGIN
    IF filter IS NOT NULL AND jsonb_typeof(filter) <> 'object' THEN
        RAISE EXCEPTION 'expected filter as a json object, got %', jsonb_typeof(filter) USING ERRCODE = '22023';
    END IF;
    EXECUTE format(
        $q$SELECT count(*) FROM semsearch.%I WHERE (($1)::jsonb IS NULL OR ((NOT ($1)::jsonb ? 'contains' OR metadata @> (($1)::jsonb -> 'contains')) AND (NOT ($1)::jsonb ? 'path' OR jsonb_path_match(metadata, (($1)::jsonb ->> 'path')::jsonpath, coalesce(($1)::jsonb -> 'vars', '{}'::jsonb), true)) AND (NOT ($1)::jsonb ? 'tenant' OR tenant = (($1)::jsonb ->> 'tenant'))))$q$,
        c.table_name) INTO n USING semsearch.filter_spec(filter, filter_path, filter_vars, tenant);
    RETURN n;
END
$fn$;

-- "More like this": semsearch.search() with the stored row's full vector, the row itself left out.
-- With tenant, the row must be that tenant's too.
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

COMMENT ON FUNCTION semsearch.more_like IS
'the k rows nearest to a stored row (by its full vector), the row itself left out; the options are search()''s. '
'Example: SELECT * FROM semsearch.more_like(''movies'', ''m1'', 5);';
COMMENT ON FUNCTION semsearch.get IS
'the rows with these keys, in the order given; a key not stored is absent. '
'Example: SELECT * FROM semsearch.get(''movies'', ARRAY[''m1'', ''m2'']);';
COMMENT ON FUNCTION semsearch.count IS
'rows a filter keeps, as search() takes it. Example: SELECT semsearch.count(''movies'', filter => ''{"lang": "es"}'');';

SELECT semsearch.pin_search_paths();
