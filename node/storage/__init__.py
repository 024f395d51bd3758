"""SQLite access for the node: schema migrations and the local case store."""
