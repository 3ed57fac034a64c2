-- +goose Up
-- Each listener's daily mix (GET /v1/me/feed), made at their first request
-- of a UTC day and served all that day as made: track ids in order, and
-- which of them are the listener's favourites. A row is replaced only by a
-- later day's mix. See internal/feed/home_mix.go.
CREATE TABLE feed_daily_mix (
    user_id  text PRIMARY KEY,
    day      date NOT NULL,
    made_at  timestamptz NOT NULL,
    tracks   text[] NOT NULL,
    familiar boolean[] NOT NULL
);

-- +goose Down
DROP TABLE feed_daily_mix;
