-- +goose Up
-- Refresh jobs (POST /v1/me/recommendations/refresh, and the listening-driven
-- refresh): one row per job. A listener has at most one job queued or running
-- (the partial unique index), so concurrent requests share it; the event that
-- runs it is written into the outbox in the row's transaction. result_etag is
-- the ETag of the listener's stored result when the job finished.
CREATE TABLE recommend_job (
    id           uuid PRIMARY KEY,
    user_id      text NOT NULL,
    reason       text NOT NULL,
    state        text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts     int NOT NULL DEFAULT 0,
    requested_at timestamptz NOT NULL,
    started_at   timestamptz,
    finished_at  timestamptz,
    result_etag  text,
    error        text
);
CREATE UNIQUE INDEX recommend_job_active ON recommend_job (user_id) WHERE state IN ('queued', 'running');
CREATE INDEX recommend_job_user ON recommend_job (user_id, requested_at DESC);

-- What the batch recompute trained that one listener's refresh and the
-- similar-items lists need, replaced by each recompute (made_at: the tick's
-- time; a row is only replaced by a later one, rows a later recompute did
-- not write are deleted by it).
--
-- recommend_similar: each track's (kind 'track', key the track id) and each
-- artist's (kind 'artist', key the artist's name as listens carry it)
-- co-occurrence neighbours, most similar first; for artists, tracks holds
-- each neighbour's most played track (how the query service finds its id).
CREATE TABLE recommend_similar (
    kind      text NOT NULL CHECK (kind IN ('track', 'artist')),
    key       text NOT NULL,
    version   text NOT NULL,
    made_at   timestamptz NOT NULL,
    neighbours text[] NOT NULL,
    scores    real[] NOT NULL,
    tracks    text[],
    PRIMARY KEY (kind, key)
);

-- recommend_factors: the ALS model's track factors (one row, name 'als'):
-- track_ids in factor order and y, tracks × factors little-endian float32.
CREATE TABLE recommend_factors (
    name      text PRIMARY KEY,
    version   text NOT NULL,
    made_at   timestamptz NOT NULL,
    factors   int NOT NULL,
    lambda    double precision NOT NULL,
    alpha     double precision NOT NULL,
    track_ids text[] NOT NULL,
    y         bytea NOT NULL
);

-- recommend_dirty: new scrobbles per listener since their stored result was
-- made (since: that result's made_at), and when the listening last queued a
-- refresh (the debounce).
CREATE TABLE recommend_dirty (
    user_id        text PRIMARY KEY,
    since          timestamptz,
    scrobbles      int NOT NULL DEFAULT 0,
    last_queued_at timestamptz
);

-- +goose Down
DROP TABLE recommend_dirty;
DROP TABLE recommend_factors;
DROP TABLE recommend_similar;
DROP TABLE recommend_job;
