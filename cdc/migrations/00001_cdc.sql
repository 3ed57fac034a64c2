-- +goose Up
-- One row per replication slot whose initial snapshot was fully published. A
-- slot without a row here was created but its snapshot did not finish (a crash
-- during it): CDC drops and recreates such a slot and snapshots again.
CREATE TABLE IF NOT EXISTS cdc_slot (
    slot         text PRIMARY KEY,
    snapshot_lsn pg_lsn      NOT NULL,
    snapshot_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE cdc_slot;
