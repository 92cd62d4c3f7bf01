"""Claims as leases (heartbeat and holder of each attempt), bounded refusals, storage keys indexed.

* ``image_fetch_attempt.heartbeat_at`` and ``holder_host``/``holder_node``/``holder_pid``/``holder_started``: a claim
  is kept alive by its worker; a claim whose heartbeat is old, or whose holder process is provably dead, is
  taken over.
* ``image_fetch_attempt.refusal_counts``: counts by reason of every refusal (``refusals`` keeps a bounded sample).
* ``ix_product_image_storage_key``: an object is deleted only when no ``product_image`` row of any product
  references its key, which is a lookup by key.

Plain ``ADD COLUMN`` / ``DROP COLUMN`` (SQLite 3.35+ and PostgreSQL): no table rebuild, so the partial indexes of
the table are untouched.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ATTEMPT_COLUMNS = ("refusal_counts", "heartbeat_at", "holder_host", "holder_node", "holder_pid", "holder_started")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("image_fetch_attempt", sa.Column("refusal_counts", _json(), nullable=True))
    op.add_column("image_fetch_attempt", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("image_fetch_attempt", sa.Column("holder_host", sa.String(length=255), nullable=True))
    op.add_column("image_fetch_attempt", sa.Column("holder_node", sa.String(length=64), nullable=True))
    op.add_column("image_fetch_attempt", sa.Column("holder_pid", sa.Integer(), nullable=True))
    op.add_column("image_fetch_attempt", sa.Column("holder_started", sa.BigInteger(), nullable=True))
    op.create_index("ix_product_image_storage_key", "product_image", ["storage_key"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_product_image_storage_key", table_name="product_image")
    for column in reversed(_ATTEMPT_COLUMNS):
        op.drop_column("image_fetch_attempt", column)
