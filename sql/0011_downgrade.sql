-- Downgrade of migration 0011: no queue of pending documents. The syncs of collections with passages
-- write to it, so they go first (their functions, with CASCADE their triggers on the source tables,
-- and their records): the source tables' writes would fail otherwise.

DO $unsync$
DECLARE
    synced text;
    event text;
BEGIN
    FOR synced IN SELECT s.collection FROM semsearch.synced_tables s JOIN semsearch.collections c
                  ON c.name = s.collection WHERE c.passages IS NOT NULL
    LOOP
        FOREACH event IN ARRAY ARRAY['ins', 'upd', 'del', 'tru'] LOOP
            EXECUTE format('DROP FUNCTION IF EXISTS semsearch.%I() CASCADE', 'sync_' || synced || '_' || event);
        END LOOP;
        DELETE FROM semsearch.synced_tables WHERE collection = synced;
    END LOOP;
END
$unsync$;

DROP TABLE IF EXISTS semsearch.pending_documents;
