"""The project's own tables beside a Django catalog: attempts (claims), search cache, per-picture details.

Keyed by the Django rows' ids, with no foreign key into the Django tables (``ml_images/catalog/django_models.py``
says why). Nothing here touches a table this project did not create.

Revision ID: d0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _big_id() -> sa.types.TypeEngine[Any]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ml_images_fetch_attempt",
        sa.Column("id", _big_id(), primary_key=True),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("started_at", _when(), nullable=False),
        sa.Column("finished_at", _when()),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(64)),
        sa.Column("reason", sa.Text()),
        sa.Column("refusals", _json()),
        sa.Column("refusal_counts", _json()),
        sa.Column("heartbeat_at", _when()),
        sa.Column("holder_host", sa.String(255)),
        sa.Column("holder_node", sa.String(64)),
        sa.Column("holder_pid", sa.Integer()),
        sa.Column("holder_started", sa.BigInteger()),
        sa.Column("search_calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("candidates_found", sa.Integer(), server_default="0", nullable=False),
        sa.Column("images_stored", sa.Integer(), server_default="0", nullable=False),
        sa.Column("provider", sa.String(32)),
        sa.Column("search_calls_by_provider", _json()),
        sa.Column("search_cache_hits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("downloads", sa.Integer(), server_default="0", nullable=False),
        sa.Column("candidates", _json()),
        sa.Column("cover_report", _json()),
        sa.PrimaryKeyConstraint("id", name="pk_ml_images_fetch_attempt"),
    )
    op.create_index(
        "uq_ml_images_fetch_attempt_in_flight",
        "ml_images_fetch_attempt",
        ["product_id"],
        unique=True,
        postgresql_where=sa.text("finished_at IS NULL"),
        sqlite_where=sa.text("finished_at IS NULL"),
    )
    op.create_index(
        "ix_ml_images_fetch_attempt_outcome", "ml_images_fetch_attempt", ["product_id", "outcome", "finished_at"]
    )
    op.create_table(
        "ml_images_image",
        sa.Column("product_image_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("storage_key", sa.String(1024)),
        sa.Column("source_url", sa.String(2000)),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("background_removed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("source_kind", sa.String(16)),
        sa.Column("page_url", sa.String(2000)),
        sa.Column("provider", sa.String(32)),
        sa.Column("provider_rank", sa.Integer()),
        sa.Column("rank_score", sa.Float()),
        sa.Column("rank_parts", _json()),
        sa.Column("background_method", sa.String(32)),
        sa.Column("quality_score", sa.Float()),
        sa.Column("cover_compliant", sa.Boolean()),
        sa.Column("checks", _json()),
        sa.Column("created_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("product_image_id", name="pk_ml_images_image"),
    )
    op.create_index("ix_ml_images_image_product_id", "ml_images_image", ["product_id"])
    op.create_index("ix_ml_images_image_storage_key", "ml_images_image", ["storage_key"])
    op.create_table(
        "ml_images_search_cache",
        sa.Column("id", _big_id(), primary_key=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("query", sa.String(300), nullable=False),
        sa.Column("results", _json(), nullable=False),
        sa.Column("calls", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ml_images_search_cache"),
        sa.UniqueConstraint("provider", "query", name="uq_ml_images_search_cache_provider_query"),
    )


def downgrade() -> None:
    op.drop_table("ml_images_search_cache")
    op.drop_index("ix_ml_images_image_storage_key", table_name="ml_images_image")
    op.drop_index("ix_ml_images_image_product_id", table_name="ml_images_image")
    op.drop_table("ml_images_image")
    op.drop_index("ix_ml_images_fetch_attempt_outcome", table_name="ml_images_fetch_attempt")
    op.drop_index("uq_ml_images_fetch_attempt_in_flight", table_name="ml_images_fetch_attempt")
    op.drop_table("ml_images_fetch_attempt")
