-- +goose Up
-- One row per charge attempt. id is also the provider Idempotence-Key, so an
-- attempt can never become two charges; the partial unique index is the last
-- line of defence against recording two captures for one paid period.
CREATE TABLE payment (
    id                  text PRIMARY KEY,
    subscription_id     text        NOT NULL,
    user_id             text        NOT NULL,
    period              int         NOT NULL CHECK (period >= 1),
    attempt             int         NOT NULL CHECK (attempt >= 1),
    purpose             text        NOT NULL CHECK (purpose IN ('initial', 'renewal')),
    amount_minor        bigint      NOT NULL CHECK (amount_minor > 0),
    currency            text        NOT NULL,
    payment_token       text,
    payment_method_id   text,
    status              text        NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    provider_payment_id text UNIQUE,
    saved_method_id     text,
    reason              text,
    refund_id           text,
    saga_id             text,
    saga_attempt        int,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subscription_id, period, attempt)
);
CREATE UNIQUE INDEX payment_one_capture_per_period ON payment (subscription_id, period)
    WHERE status IN ('succeeded', 'refunded');

-- +goose Down
DROP TABLE payment;
