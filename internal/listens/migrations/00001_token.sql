-- +goose Up
-- Listen tokens: what existing scrobblers send as "Authorization: Token
-- <token>" (ListenBrainz's user token). Only the SHA-256 of a token is kept;
-- the token itself is shown once, when it is created. See docs/stats.md.
CREATE TABLE listens_token (
    id          uuid PRIMARY KEY,
    user_id     text NOT NULL,
    name        text NOT NULL,
    hash        bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX listens_token_user ON listens_token (user_id, created_at DESC);

-- +goose Down
DROP TABLE listens_token;
