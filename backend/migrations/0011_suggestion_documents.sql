-- Suggestions cite knowledge documents too: `document_citations` lists the documents a suggestion relies on
-- (`citations` stays the list of incident ids) and `retrieved_documents` the documents retrieval returned for it.
ALTER TABLE suggestions ADD COLUMN document_citations bigint[] NOT NULL DEFAULT '{}';
ALTER TABLE suggestions ADD COLUMN retrieved_documents bigint[] NOT NULL DEFAULT '{}';
