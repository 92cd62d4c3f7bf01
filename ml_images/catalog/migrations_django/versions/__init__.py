"""Alembic revisions of the catalog schema, oldest first by ``down_revision``."""
