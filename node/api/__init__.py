"""The local HTTP API for counselling apps (spec in openapi.yaml)."""
