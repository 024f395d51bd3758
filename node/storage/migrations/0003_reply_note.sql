-- The free-text note a receiving office adds to its decline; kept on the
-- sending side so the counsellor can read why (it travelled end-to-end encrypted).
ALTER TABLE referrals ADD COLUMN reply_note TEXT;
