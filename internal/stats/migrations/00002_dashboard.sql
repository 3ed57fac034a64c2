-- +goose Up
-- The dashboards' and cards' reads (docs/stats.md): one track's or a few
-- tracks' streams (cards: all time; dashboards: per day over a period),
-- and one artist's. Partitioned indexes: each monthly partition gets its own.
CREATE INDEX stats_listen_track ON stats_listen (track_id, listened_at) WHERE track_id <> '';
CREATE INDEX stats_listen_artist ON stats_listen (artist_name, listened_at);

-- +goose Down
DROP INDEX stats_listen_artist;
DROP INDEX stats_listen_track;
