-- App tokens can be revoked (mbe-node token revoke): the row stays, so
-- `token list` shows what was revoked and when; the token is refused at once.
ALTER TABLE app_tokens ADD COLUMN revoked INTEGER;
