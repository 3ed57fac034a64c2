-- +goose Up
-- Events the broker gave up on, as the dead-letter sink received them. One row
-- per (event source, event id, failed destination): a redelivered dead letter
-- changes nothing; the same event failing again after a re-drive reopens it.
CREATE TABLE dead_letter (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_source text        NOT NULL,
    event_id     text        NOT NULL,
    error_dest   text        NOT NULL DEFAULT '', -- knativeerrordest
    event_type   text        NOT NULL,
    error_code   text        NOT NULL DEFAULT '', -- knativeerrorcode
    error_data   text        NOT NULL DEFAULT '', -- knativeerrordata, decoded
    event        json        NOT NULL,            -- the event as received, structured mode (json keeps its bytes)
    received_at  timestamptz NOT NULL DEFAULT now(),
    times        integer     NOT NULL DEFAULT 1,  -- how often it was dead-lettered
    redriven_at  timestamptz,
    UNIQUE (event_source, event_id, error_dest)
);
CREATE INDEX dead_letter_pending ON dead_letter (id) WHERE redriven_at IS NULL;

-- +goose Down
DROP TABLE dead_letter;
