"""Alembic environment and revisions; run them with `trackd.store.migrate`."""
