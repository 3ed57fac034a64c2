-- +goose Up
-- Signing-key seeds are stored encrypted (AES-256-GCM, see seal.go): private_key
-- holds nonce || ciphertext and enc_key_id names the key that encrypted it. A
-- NULL enc_key_id is a plaintext seed written before this migration; auth
-- encrypts such rows on its next start.
ALTER TABLE auth_signing_key ADD COLUMN enc_key_id text;

-- +goose Down
ALTER TABLE auth_signing_key DROP COLUMN enc_key_id;
