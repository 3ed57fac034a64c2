-- +goose Up
-- The account's locale_version (auth) the contact's locale was taken at:
-- LocaleChanged and a registration change the locale only to a higher
-- version, so a redelivered or overtaken older change cannot undo a newer one.
ALTER TABLE notification_contact ADD COLUMN locale_version bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE notification_contact DROP COLUMN locale_version;
