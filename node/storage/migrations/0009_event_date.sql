-- The date an outcome happened, as the receiving office reported it with a
-- referral.status (a first appointment, a completion). Kept on both sides and
-- shown in the referral's history; before, only the time the event was
-- recorded was kept and the reported date was dropped.
ALTER TABLE referral_events ADD COLUMN date TEXT;
