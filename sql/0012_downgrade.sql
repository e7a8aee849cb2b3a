-- Downgrade of migration 0012: no plan mode or reason (every collection keeps the plan it has now).

DROP VIEW semsearch.stats;
CREATE VIEW semsearch.stats AS
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
       c.created_at
FROM semsearch.collections c
JOIN pg_class t ON t.oid = to_regclass(format('semsearch.%I', c.table_name));
COMMENT ON VIEW semsearch.stats IS 'per collection: size on disk, plan and tuned search parameters';

ALTER TABLE semsearch.collections DROP COLUMN IF EXISTS plan_reason, DROP COLUMN IF EXISTS plan_mode;
