"""Initial catalog schema: product_master, product_image, mercadolibre_listing, image_fetch_attempt, search_cache.

Names are spelled out (not derived from the models' naming convention at run time) so this revision keeps
creating the same schema whatever later versions of models.py say.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "product_master",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("price", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("image_url", sa.String(length=2000), nullable=True),
        sa.Column("last_updated", _timestamp(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("is_for_mercadolibre", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("specs", _json(), nullable=True),
        sa.Column("normalized_name", sa.String(length=500), nullable=True),
        sa.Column("model_name", sa.String(length=255), nullable=True),
        sa.Column("gtin", sa.String(length=32), nullable=True),
        sa.Column("seo_title", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_master")),
    )
    op.create_index(op.f("ix_product_master_code"), "product_master", ["code"], unique=False)
    # The selection's index: only products flagged for Mercado Libre and active, ordered as the selection reads;
    # on PostgreSQL it carries category and price so the rules are checked inside the index.
    op.create_index(
        "ix_product_master_ml_candidates",
        "product_master",
        ["last_updated", "id"],
        unique=False,
        postgresql_where=sa.text("is_for_mercadolibre AND is_active"),
        postgresql_include=["category", "price"],
        sqlite_where=sa.text("is_for_mercadolibre = 1 AND is_active = 1"),
    )

    op.create_table(
        "search_cache",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("query", sa.String(length=300), nullable=False),
        sa.Column("results", _json(), nullable=False),
        sa.Column("calls", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_cache")),
        sa.UniqueConstraint("provider", "query", name=op.f("uq_search_cache_provider_query")),
    )

    op.create_table(
        "image_fetch_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("refusals", _json(), nullable=True),
        sa.Column("search_calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("candidates_found", sa.Integer(), server_default="0", nullable=False),
        sa.Column("images_stored", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product_master.id"],
            name=op.f("fk_image_fetch_attempt_product_id_product_master"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_fetch_attempt")),
    )
    op.create_index(
        "ix_image_fetch_attempt_outcome", "image_fetch_attempt", ["product_id", "outcome", "finished_at"], unique=False
    )
    op.create_index(op.f("ix_image_fetch_attempt_product_id"), "image_fetch_attempt", ["product_id"], unique=False)
    # The in-flight claim: at most one unfinished attempt per product, enforced by the database.
    op.create_index(
        "uq_image_fetch_attempt_in_flight",
        "image_fetch_attempt",
        ["product_id"],
        unique=True,
        postgresql_where=sa.text("finished_at IS NULL"),
        sqlite_where=sa.text("finished_at IS NULL"),
    )

    op.create_table(
        "mercadolibre_listing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_master_id", sa.Integer(), nullable=False),
        sa.Column("ml_id", sa.String(length=64), nullable=True),
        sa.Column("category_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="PENDING", nullable=False),
        sa.Column("sync_error", sa.Text(), nullable=True),
        sa.Column("last_synced", _timestamp(), nullable=True),
        sa.Column("final_price", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("net_price", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("profit", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("available_quantity", sa.Integer(), nullable=True),
        sa.Column("attributes", _json(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mercadolibre_listing")),
        sa.UniqueConstraint("product_master_id", name=op.f("uq_mercadolibre_listing_product_master_id")),
        sa.ForeignKeyConstraint(
            ["product_master_id"],
            ["product_master.id"],
            name=op.f("fk_mercadolibre_listing_product_master_id_product_master"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("ml_id", name=op.f("uq_mercadolibre_listing_ml_id")),
        sa.CheckConstraint(
            "status IN ('PENDING', 'ACTIVE', 'PAUSED', 'ERROR')",
            name=op.f("ck_mercadolibre_listing_listing_status"),
        ),
    )
    op.create_index(op.f("ix_mercadolibre_listing_status"), "mercadolibre_listing", ["status"], unique=False)

    op.create_table(
        "product_image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("is_processed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("storage_key", sa.String(length=1024), nullable=True),
        sa.Column("source_url", sa.String(length=2000), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("background_removed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_image")),
        sa.UniqueConstraint("product_id", "order", name=op.f("uq_product_image_product_order")),
        sa.CheckConstraint('"order" >= 0', name=op.f("ck_product_image_order_non_negative")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product_master.id"],
            name=op.f("fk_product_image_product_id_product_master"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_product_image_product_id"), "product_image", ["product_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_product_image_product_id"), table_name="product_image")
    op.drop_table("product_image")
    op.drop_index(op.f("ix_mercadolibre_listing_status"), table_name="mercadolibre_listing")
    op.drop_table("mercadolibre_listing")
    op.drop_index("uq_image_fetch_attempt_in_flight", table_name="image_fetch_attempt")
    op.drop_index(op.f("ix_image_fetch_attempt_product_id"), table_name="image_fetch_attempt")
    op.drop_index("ix_image_fetch_attempt_outcome", table_name="image_fetch_attempt")
    op.drop_table("image_fetch_attempt")
    op.drop_table("search_cache")
    op.drop_index("ix_product_master_ml_candidates", table_name="product_master")
    op.drop_index(op.f("ix_product_master_code"), table_name="product_master")
    op.drop_table("product_master")
