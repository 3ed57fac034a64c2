-- +goose Up
-- search_applied.lsn becomes an exact watermark: every catalog transaction
-- with a commit LSN at or below it has been applied. It is built from CDC's
-- progress reports (search_progress: spans of the WAL and the transactions in
-- them) and the change events the indexer applied (search_txn: per
-- transaction, how many change events it has and which it applied). chained
-- says lsn was set that way; before the first report (or on a database from
-- before this migration, where lsn was only the highest applied commit) it is
-- false and readers treat the watermark as 0.
ALTER TABLE search_applied ADD COLUMN IF NOT EXISTS chained boolean NOT NULL DEFAULT false;

CREATE TABLE IF NOT EXISTS search_progress (
    from_lsn bigint  NOT NULL CHECK (from_lsn >= 0),
    to_lsn   bigint  NOT NULL,
    snapshot boolean NOT NULL DEFAULT false,
    rows     int     NOT NULL DEFAULT 0,
    resume   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (from_lsn, to_lsn),
    CHECK (to_lsn >= from_lsn)
);

CREATE TABLE IF NOT EXISTS search_txn (
    commit_lsn bigint PRIMARY KEY,
    total      int CHECK (total > 0),
    seen       int[] NOT NULL DEFAULT '{}'
);

-- +goose Down
DROP TABLE search_txn;
DROP TABLE search_progress;
ALTER TABLE search_applied DROP COLUMN chained;
