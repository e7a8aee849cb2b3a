-- Pending documents (migration 0011): a synced table's documents waiting to be split into passages.
-- The sync triggers of a collection with passages (semsearch/document_queue.py) queue each written
-- row here, as of its last write; backfill splits, embeds and writes it, then drops the entry if its
-- version is still the one it read (a write meanwhile gives it a new version: it stays queued).

CREATE SEQUENCE semsearch.pending_documents_version;

CREATE TABLE semsearch.pending_documents (
    collection text NOT NULL REFERENCES semsearch.collections (name) ON DELETE CASCADE,
    key text NOT NULL,
    content text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    tenant text,
    -- what queued it last: a new row, or a change of its text, metadata or tenant
    op text NOT NULL CONSTRAINT pending_documents_op_check CHECK (op IN ('insert', 'update')),
    queued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- unique across entries and writes: an entry deleted and queued again never shows an old version
    version bigint NOT NULL DEFAULT nextval('semsearch.pending_documents_version'),
    PRIMARY KEY (collection, key)
);
ALTER SEQUENCE semsearch.pending_documents_version OWNED BY semsearch.pending_documents.version;
COMMENT ON TABLE semsearch.pending_documents IS
    'documents of a synced table (Database.sync_table with passages) waiting to be split into passages and embedded by backfill';

-- A writer of a collection (INSERT on its table) sees and changes that collection's entries, no other's
ALTER TABLE semsearch.pending_documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY pending_documents_writer ON semsearch.pending_documents FOR ALL
    USING (EXISTS (SELECT FROM semsearch.collections c
                   WHERE c.name = pending_documents.collection AND semsearch.may('INSERT', c.table_name)))
    WITH CHECK (EXISTS (SELECT FROM semsearch.collections c
                        WHERE c.name = pending_documents.collection AND semsearch.may('INSERT', c.table_name)));

-- The roles granted --write before this migration (they hold INSERT on the quarantine) drain queues too:
-- they read, lock (FOR UPDATE) and delete entries; only the sync triggers (their owner's rights) add them
DO $grant$
DECLARE
    who text;
BEGIN
    FOR who IN SELECT DISTINCT a.grantee::regrole::text FROM pg_class c, aclexplode(c.relacl) a
               WHERE c.oid = 'semsearch.quarantine'::regclass AND a.privilege_type = 'INSERT'
                 AND a.grantee <> c.relowner AND a.grantee <> 0
    LOOP
        EXECUTE format('GRANT SELECT, UPDATE, DELETE ON semsearch.pending_documents TO %s', who);
    END LOOP;
END
$grant$;
