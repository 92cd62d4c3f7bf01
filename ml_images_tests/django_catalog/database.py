"""From the SQLAlchemy URLs the suite uses to Django's ``DATABASES`` entries."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url


def django_database_settings(url: str) -> dict[str, Any]:
    """The Django ``DATABASES["default"]`` entry for a SQLAlchemy URL (``postgresql[+driver]://`` or ``sqlite://``)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parsed.database or ":memory:"}
    if backend == "postgresql":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parsed.database or "",
            "USER": parsed.username or "",
            "PASSWORD": parsed.password or "",
            "HOST": parsed.host or "",
            "PORT": str(parsed.port or ""),
        }
    raise ValueError(f"no Django backend for {backend!r} URLs (only sqlite and postgresql)")
