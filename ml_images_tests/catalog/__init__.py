"""Catalog layer tests (a package, so that mypy tells this conftest from the other folders' ones)."""
