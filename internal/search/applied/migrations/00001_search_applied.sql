-- +goose Up
-- How far the search indexer has applied the change stream: the highest
-- commit LSN whose change is searchable. Read-your-writes waits on it.
CREATE TABLE IF NOT EXISTS search_applied (
    id         int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    lsn        bigint NOT NULL CHECK (lsn >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE search_applied;
