-- Migration 0007 undone: the everyday calls' functions and their row type.
DROP FUNCTION semsearch.more_like(text, text, integer, real, integer, boolean, jsonb, jsonpath, jsonb, text);
DROP FUNCTION semsearch.count(text, jsonb, jsonpath, jsonb, text);
DROP FUNCTION semsearch.get(text, text[], text);
DROP FUNCTION semsearch.collection_named(text);
DROP TYPE semsearch.stored_row;
