-- +goose Up
-- The consistent point of the last CDC snapshot the indexer saw. A new one
-- means the change stream was restarted from a fresh snapshot, which carries
-- no deletes: the indexer then rebuilds the read model from the write model.
ALTER TABLE search_applied ADD COLUMN IF NOT EXISTS snapshot_lsn bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE search_applied DROP COLUMN snapshot_lsn;
