-- +goose Up
CREATE TABLE subscription (
    id                text PRIMARY KEY,
    user_id           text        NOT NULL,
    plan              text        NOT NULL,
    status            text        NOT NULL
                      CHECK (status IN ('pending', 'active', 'past_due', 'canceled', 'expired', 'failed')),
    amount_minor      bigint      NOT NULL,
    currency          text        NOT NULL,
    payment_token     text,
    payment_method_id text,             -- the saved method renewals charge
    current_period    int         NOT NULL DEFAULT 0,
    period_start      timestamptz,
    period_end        timestamptz,
    pending_until     timestamptz,      -- the purchase must be paid by then (choreography)
    due_period        int         NOT NULL DEFAULT 0, -- last renewal asked for: period and attempt
    due_attempt       int         NOT NULL DEFAULT 0,
    dunning_attempt   int         NOT NULL DEFAULT 0, -- failed charges of the period being renewed
    first_failed_at   timestamptz,
    next_retry_at     timestamptz,
    reason            text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- One purchase at a time: a second concurrent one is refused (409). A canceled
-- subscription still runs until its period ends, so it counts too.
CREATE UNIQUE INDEX subscription_one_open_per_user ON subscription (user_id)
    WHERE status IN ('pending', 'active', 'past_due', 'canceled');
CREATE INDEX subscription_due ON subscription (status, period_end);

-- A paid period is recorded once: the primary key is what makes a duplicated
-- PaymentCompleted unable to activate (or extend) twice.
CREATE TABLE subscription_period (
    subscription_id text        NOT NULL REFERENCES subscription (id),
    period          int         NOT NULL,
    payment_id      text        NOT NULL UNIQUE,
    amount_minor    bigint      NOT NULL,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, period)
);

CREATE TABLE subscription_history (
    id              bigserial PRIMARY KEY,
    subscription_id text        NOT NULL REFERENCES subscription (id),
    at              timestamptz NOT NULL DEFAULT now(),
    from_status     text,
    to_status       text        NOT NULL,
    reason          text
);
CREATE INDEX subscription_history_sub ON subscription_history (subscription_id, id);

-- +goose Down
DROP TABLE subscription_history;
DROP TABLE subscription_period;
DROP TABLE subscription;
