-- +goose Up
-- Where to write to a user: fed by UserRegistered, read for every
-- subscription email (those events carry only the user id).
CREATE TABLE notification_contact (
    user_id    text        PRIMARY KEY,
    email      text        NOT NULL,
    locale     text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per email this service has decided to send, keyed by the event
-- that caused it. The row is committed (state 'pending') BEFORE the SMTP
-- transaction starts and turned 'sent' right after the server accepts the
-- message, so a redelivered event finds either 'sent' (skip) or 'pending'
-- (ask the mail store whether message_id arrived before sending again).
CREATE TABLE notification_email (
    event_source text        NOT NULL,
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    kind         text        NOT NULL,
    message_id   text        NOT NULL UNIQUE,
    state        text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent')),
    -- attempts counts send attempts that were started; lease_until is set
    -- while one delivery owns the send (a crashed sender's lease expires).
    attempts     integer     NOT NULL DEFAULT 0,
    lease_until  timestamptz,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    PRIMARY KEY (event_source, event_id)
);

-- +goose Down
DROP TABLE notification_email;
DROP TABLE notification_contact;
