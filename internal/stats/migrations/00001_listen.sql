-- +goose Up
-- The raw listens: the truth of listening statistics, written only by the
-- stats-writer function, exactly once per listen id (a hash of user, time and
-- track; it determines listened_at, so the key holding the partition column
-- is as unique as the id alone). Monthly range partitions, created by the
-- writer before it inserts into a new month; BRIN on time for the scans of
-- the rollups, a B-tree for one listener's history. See docs/stats.md.
CREATE TABLE stats_listen (
    listen_id    text NOT NULL,
    user_id      text NOT NULL,
    listened_at  timestamptz NOT NULL,
    artist_name  text NOT NULL,
    track_name   text NOT NULL,
    release_name text NOT NULL DEFAULT '',
    track_id     text NOT NULL DEFAULT '',
    duration_ms  bigint NOT NULL DEFAULT 0,
    played_ms    bigint NOT NULL DEFAULT 0,
    stream       boolean NOT NULL,
    scrobble     boolean NOT NULL,
    skipped      boolean NOT NULL DEFAULT false,
    premium      boolean NOT NULL DEFAULT false,
    client       text NOT NULL DEFAULT '',
    PRIMARY KEY (listen_id, listened_at)
) PARTITION BY RANGE (listened_at);
CREATE INDEX stats_listen_time ON stats_listen USING brin (listened_at);
CREATE INDEX stats_listen_user ON stats_listen (user_id, listened_at DESC, listen_id DESC);

-- The global charts, computed from stats_listen by the scheduled rollup
-- (PingSource stats-rollup) and by `overture stats rebuild`: the top 50
-- tracks and artists by streams, per day and per ISO week (UTC).
CREATE TABLE stats_chart (
    period       text NOT NULL CHECK (period IN ('daily', 'weekly')),
    period_start date NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('tracks', 'artists')),
    rank         int NOT NULL,
    artist_name  text NOT NULL,
    track_name   text NOT NULL DEFAULT '',
    track_id     text NOT NULL DEFAULT '',
    streams      bigint NOT NULL,
    listeners    bigint NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, period_start, kind, rank)
);

-- +goose Down
DROP TABLE stats_chart;
DROP TABLE stats_listen;
