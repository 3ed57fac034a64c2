-- +goose Up
CREATE TABLE IF NOT EXISTS outbox (
    id            bigserial PRIMARY KEY,
    event_id      text        NOT NULL,
    event_type    text        NOT NULL,
    event_source  text        NOT NULL,
    partition_key text,
    event         jsonb       NOT NULL, -- the whole CloudEvent, structured mode
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE outbox;
