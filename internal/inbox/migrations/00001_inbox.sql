-- +goose Up
CREATE TABLE IF NOT EXISTS inbox (
    consumer     text        NOT NULL,
    event_source text        NOT NULL,
    event_id     text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_source, event_id)
);

-- +goose Down
DROP TABLE inbox;
