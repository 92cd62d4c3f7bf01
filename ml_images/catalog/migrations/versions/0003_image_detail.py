"""Provenance and judgement of every stored picture; cost and ranking of every attempt.

* ``ml_images_image``: one row per ``product_image`` row (same id, removed with it): the picture's source kind
  (distributor photo or web search), page URL, provider and rank, ranking score and its parts, how the background
  was separated, the quality score, whether it passed the cover gate and the checks' figures.
* ``image_fetch_attempt``: which provider answered, search calls by provider, search cache hits, downloads made,
  the ranked candidates with their score parts (bounded) and the cover attempts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ATTEMPT_COLUMNS = (
    "provider",
    "search_calls_by_provider",
    "search_cache_hits",
    "downloads",
    "candidates",
    "cover_report",
)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ml_images_image",
        sa.Column("product_image_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=True),
        sa.Column("page_url", sa.String(length=2000), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("provider_rank", sa.Integer(), nullable=True),
        sa.Column("rank_score", sa.Float(), nullable=True),
        sa.Column("rank_parts", _json(), nullable=True),
        sa.Column("background_method", sa.String(length=32), nullable=True),
        sa.Column("quality_score", sa.Float(), nullable=True),
        sa.Column("cover_compliant", sa.Boolean(), nullable=True),
        sa.Column("checks", _json(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_image_id"],
            ["product_image.id"],
            name=op.f("fk_ml_images_image_product_image_id_product_image"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_image_id", name=op.f("pk_ml_images_image")),
    )
    op.create_index(op.f("ix_ml_images_image_product_id"), "ml_images_image", ["product_id"], unique=False)
    op.add_column("image_fetch_attempt", sa.Column("provider", sa.String(length=32), nullable=True))
    op.add_column("image_fetch_attempt", sa.Column("search_calls_by_provider", _json(), nullable=True))
    op.add_column(
        "image_fetch_attempt", sa.Column("search_cache_hits", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("image_fetch_attempt", sa.Column("downloads", sa.Integer(), server_default="0", nullable=False))
    op.add_column("image_fetch_attempt", sa.Column("candidates", _json(), nullable=True))
    op.add_column("image_fetch_attempt", sa.Column("cover_report", _json(), nullable=True))


def downgrade() -> None:
    for column in reversed(_ATTEMPT_COLUMNS):
        op.drop_column("image_fetch_attempt", column)
    op.drop_index(op.f("ix_ml_images_image_product_id"), table_name="ml_images_image")
    op.drop_table("ml_images_image")
