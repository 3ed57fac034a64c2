-- +goose Up
-- CDC (cdc/) reads this schema from the WAL. artist.bio and track.lyrics can be
-- TOASTed; with REPLICA IDENTITY DEFAULT an UPDATE that does not touch them
-- sends them as "unchanged" without a value. FULL makes PostgreSQL log the whole
-- old row (detoasted), so CDC can fill the unchanged value in and the change
-- event's "before" is the complete old row. The cost is a larger WAL record per
-- update/delete of these two tables, which are written rarely. The other tables
-- keep DEFAULT (their "before" is the primary key).
ALTER TABLE artist REPLICA IDENTITY FULL;
ALTER TABLE track REPLICA IDENTITY FULL;

-- +goose Down
ALTER TABLE artist REPLICA IDENTITY DEFAULT;
ALTER TABLE track REPLICA IDENTITY DEFAULT;
