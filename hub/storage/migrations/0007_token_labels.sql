-- A coordinator token can carry a label (`token create --label`), shown by
-- `token list`, so an operator can tell whose token is whose without the
-- token itself. Free text of the operator's choosing, e.g. "Koordination Caritas".
ALTER TABLE tokens ADD COLUMN label TEXT;
