-- Downgrade of migration 0010: no documents search, no passages setting in the catalog.

DROP FUNCTION IF EXISTS semsearch.search_documents(text, vector, integer, text, jsonb, jsonpath, jsonb, text);
ALTER TABLE semsearch.collections DROP COLUMN IF EXISTS passages;
