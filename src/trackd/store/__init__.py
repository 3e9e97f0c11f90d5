"""Persistence: engines for SQLite and PostgreSQL, ORM models, repositories, migrations."""
