-- +goose Up
-- Set with a new snapshot, cleared when a rebuild that began after it has
-- swapped: an indexer that restarts in between rebuilds again.
ALTER TABLE search_applied ADD COLUMN IF NOT EXISTS rebuild_needed boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE search_applied DROP COLUMN rebuild_needed;
