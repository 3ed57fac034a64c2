-- +goose Up
-- A listen needs its ids, and no length or position is negative: the same
-- checks as the ClickHouse table's constraints, so both backends refuse a
-- batch holding such a row as a whole (the conformance suite's
-- all-or-nothing case).
ALTER TABLE stats_listen ADD CONSTRAINT stats_listen_ids CHECK (listen_id <> '' AND user_id <> '');
ALTER TABLE stats_listen ADD CONSTRAINT stats_listen_ms CHECK (duration_ms >= 0 AND played_ms >= 0);

-- +goose Down
ALTER TABLE stats_listen DROP CONSTRAINT stats_listen_ms;
ALTER TABLE stats_listen DROP CONSTRAINT stats_listen_ids;
