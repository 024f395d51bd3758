-- Key rotation: a site's previous keys stay valid until `prev_until`
-- (docs/hub-api.md, POST /v1/keys/rotate). NULL when no rotation overlaps now.

ALTER TABLE sites ADD COLUMN prev_sign_key BLOB;
ALTER TABLE sites ADD COLUMN prev_enc_key  BLOB;
ALTER TABLE sites ADD COLUMN prev_until    INTEGER;
ALTER TABLE sites ADD COLUMN rotated       INTEGER;
