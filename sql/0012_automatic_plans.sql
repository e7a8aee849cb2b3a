-- Automatic plans (migration 0012): a collection's plan follows its size unless it was pinned, and the
-- catalog says why it has the plan it has. Existing collections keep theirs: they are pinned.

ALTER TABLE semsearch.collections
    ADD COLUMN plan_mode text NOT NULL DEFAULT 'pinned'
        CONSTRAINT collections_plan_mode_check CHECK (plan_mode IN ('auto', 'pinned')),
    ADD COLUMN plan_reason text;
COMMENT ON COLUMN semsearch.collections.plan_mode IS
    'auto: the compression plan follows the collection''s size (semsearch/plan_choice.py); pinned: it was given and stays';
COMMENT ON COLUMN semsearch.collections.plan_reason IS
    'why the collection has its plan: the last decision (rows, dims, the rule that fired, when)';

-- new columns go at the end of a view: CREATE OR REPLACE keeps the others as they are
CREATE OR REPLACE VIEW semsearch.stats AS
SELECT c.name,
       c.model,
       c.dims,
       c.storage,
       c.compression,
       c.oversample,
       c.ef_search,
       c.hnsw_m,
       c.hnsw_ef_construction,
       greatest(t.reltuples, 0)::bigint AS rows_estimate,
       pg_total_relation_size(t.oid) AS total_bytes,
       pg_relation_size(t.oid) AS heap_bytes,
       coalesce(pg_relation_size(to_regclass(format('semsearch.%I', c.table_name || '_hnsw'))), 0) AS hnsw_bytes,
       c.tuning,
       c.created_at,
       c.plan_mode,
       c.plan_reason
FROM semsearch.collections c
JOIN pg_class t ON t.oid = to_regclass(format('semsearch.%I', c.table_name));
