-- +goose Up
-- locale_version counts the changes of an account's locale (PATCH
-- /v1/auth/me); each change writes LocaleChanged with the new value, so a
-- consumer keeps the newest locale however its events are delivered.
ALTER TABLE auth_account ADD COLUMN locale_version bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE auth_account DROP COLUMN locale_version;
