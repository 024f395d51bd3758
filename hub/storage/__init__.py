"""SQLite storage of the hub: connection, migrations and the tables' queries."""
