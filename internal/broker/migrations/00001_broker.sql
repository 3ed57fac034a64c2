-- +goose Up
-- One row per (event, trigger that wants it) still to be delivered. A row is
-- deleted in the same transaction that records its delivery (and ingests the
-- subscriber's reply), so the table only ever holds pending work.
CREATE TABLE broker_delivery (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger         text        NOT NULL,           -- "<namespace>/<trigger name>"
    partition_key   text,                           -- CloudEvents partitionkey, for ordered triggers
    event           bytea       NOT NULL,           -- the CloudEvent, structured-mode JSON
    attempt         integer     NOT NULL DEFAULT 0, -- retries already scheduled
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,                    -- held by a dispatcher until then
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    last_error      text
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);

CREATE INDEX broker_delivery_due ON broker_delivery (trigger, next_attempt_at, id);
CREATE INDEX broker_delivery_key ON broker_delivery (trigger, partition_key, id) WHERE partition_key IS NOT NULL;

-- +goose Down
DROP TABLE broker_delivery;
