"""The link to the hub: outbox and inbox, retries, push, directory refresh."""
