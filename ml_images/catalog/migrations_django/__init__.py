"""Alembic migrations of the project's own tables in the ``django`` catalog layout."""
