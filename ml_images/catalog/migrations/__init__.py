"""Alembic migrations of the catalog schema (configured in code by ``ml_images.catalog.db``)."""
