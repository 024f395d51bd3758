-- Messages that carry a referral's state (referral.reply, referral.status,
-- referral.withdraw) keep their payload (JSON of codes, dates and the decline
-- note; never client fields) so one that expired undelivered can be sealed
-- again with a new id and expiry (node/storage/redelivery.py). resent_as names
-- the message that replaced it. Status values: queued, accepted, delivered,
-- rejected, expired (offers and receipts: not re-sent), resent, failed (could
-- not be sealed again: the recipient is no longer an active office).
ALTER TABLE sent_log ADD COLUMN payload TEXT;
ALTER TABLE sent_log ADD COLUMN resent_as TEXT;
CREATE INDEX sent_log_referral ON sent_log(referral_id);
