-- +goose Up
-- Every listener's recommendations as the last recompute made them, served as
-- stored (one primary-key read): the body is the exact JSON the API answers,
-- the etag its hash. model and version say what made them, made_at when; a
-- row is only ever replaced by a newer one, so a late or resumed run of an
-- older version never overwrites a newer result. See docs/recommendations.md.
CREATE TABLE recommend_result (
    user_id  text PRIMARY KEY,
    model    text NOT NULL,
    version  text NOT NULL,
    made_at  timestamptz NOT NULL,
    etag     text NOT NULL,
    body     bytea NOT NULL
);

-- +goose Down
DROP TABLE recommend_result;
