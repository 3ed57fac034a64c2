-- +goose Up
-- A provider payment that does not match the attempt it claims to settle
-- (amount, currency, provider id, metadata.payment_id) settles nothing: it is
-- recorded here for an operator to reconcile. An attempt whose own charge
-- answer did not match is also marked 'flagged' (it never backs a period).
ALTER TABLE payment DROP CONSTRAINT payment_status_check;
ALTER TABLE payment ADD CONSTRAINT payment_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded', 'flagged'));

CREATE TABLE payment_flag (
    id                  bigserial PRIMARY KEY,
    payment_id          text        NOT NULL, -- our attempt (metadata.payment_id)
    provider_payment_id text        NOT NULL,
    via                 text        NOT NULL CHECK (via IN ('charge', 'webhook')),
    reason              text        NOT NULL,
    provider_status     text        NOT NULL,
    provider_amount     text        NOT NULL, -- as the provider wrote it, e.g. "0.01 RUB"
    flagged_at          timestamptz NOT NULL DEFAULT now(),
    resolved_at         timestamptz,          -- set by the operator who reconciled it
    UNIQUE (payment_id, provider_payment_id, via)
);
CREATE INDEX payment_flag_open ON payment_flag (flagged_at) WHERE resolved_at IS NULL;

-- +goose Down
DROP TABLE payment_flag;
ALTER TABLE payment DROP CONSTRAINT payment_status_check;
ALTER TABLE payment ADD CONSTRAINT payment_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded'));
