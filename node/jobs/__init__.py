"""The background jobs of `mbe-node serve`, each with the cleanup_ctx that runs it
next to the API: referral housekeeping (expiry of unanswered referrals, retry of
withdrawals) and automatic statistics submission. The sync worker itself lives
in node/sync (it is the link to the hub); node/cli.py `sync_background` lists
all three. Jobs use the store only through its database thread.
"""
