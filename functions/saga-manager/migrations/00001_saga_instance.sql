-- +goose Up
-- One row per saga instance: a persisted state machine (as Eventuate Tram's
-- saga_instance). step/attempt name the command in flight; deadline is when
-- the sweep resends it.
CREATE TABLE saga_instance (
    saga_id      text PRIMARY KEY,
    saga_type    text        NOT NULL CHECK (saga_type IN ('purchase', 'renewal')),
    state        text        NOT NULL,
    step         text,
    attempt      int         NOT NULL DEFAULT 0,
    deadline     timestamptz,
    data         jsonb       NOT NULL,
    history      jsonb       NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX saga_instance_due ON saga_instance (deadline) WHERE completed_at IS NULL;

-- +goose Down
DROP TABLE saga_instance;
