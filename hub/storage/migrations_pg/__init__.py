"""Numbered PostgreSQL schema migrations, NNNN_name.sql (hub.storage.postgres)."""
