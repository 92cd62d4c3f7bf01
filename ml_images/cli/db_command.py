"""``ml-images db upgrade|downgrade|current``: the catalog schema (Alembic, configured in code)."""

from __future__ import annotations

import argparse
from typing import Any

from ml_images.catalog.db import (
    create_catalog_engine,
    current_revision,
    downgrade_schema,
    ensure_schema_current,
    head_revision,
    make_session_factory,
    safe_url,
    upgrade_schema,
)
from ml_images.catalog.index_advice import BUDGET_SECONDS, advise
from ml_images.catalog.layout import layout_of
from ml_images.catalog.rules import parse_publication_rules
from ml_images.catalog.selection import ImageCandidateSelector, MercadoLibreFilter
from ml_images.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("db", help="create, upgrade or inspect the catalog database schema")
    commands = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")

    upgrade = commands.add_parser("upgrade", help="create the schema or upgrade it to the latest revision")
    upgrade.add_argument("--revision", default="head", help="target revision (default: head)")
    upgrade.set_defaults(handler=upgrade_command)

    downgrade = commands.add_parser("downgrade", help="downgrade the schema ('base' drops every catalog table)")
    downgrade.add_argument("revision", help="target revision, e.g. base or -1")
    downgrade.set_defaults(handler=downgrade_command)

    current = commands.add_parser("current", help="show the database's revision and the code's head revision")
    current.set_defaults(handler=current_command)

    suggest = commands.add_parser(
        "suggest-indexes",
        help="time the pending query; print the CREATE INDEX CONCURRENTLY statements that would bring it under 1 s",
    )
    suggest.add_argument("--always", action="store_true", help="print the statements even within the budget")
    suggest.set_defaults(handler=suggest_indexes_command)


def _database_url() -> str:
    return Settings.from_env().database_url


def upgrade_command(args: argparse.Namespace) -> int:
    url = _database_url()
    engine = create_catalog_engine(url)
    layout = layout_of(engine)
    try:
        before = current_revision(engine)
        upgrade_schema(engine, args.revision)
        after = current_revision(engine)
    finally:
        engine.dispose()
    print(f"catalog database: {safe_url(url)}")
    if layout.is_django:
        print(
            f"layout django: only the project's own tables ({', '.join(layout.project_tables)}) were created or "
            f"migrated, versioned in {layout.version_table}; the Django tables ({', '.join(layout.shop_tables)}) "
            "were not altered"
        )
    if before == after:
        print(f"already at revision {after}")
    else:
        print(f"upgraded from {before or '(empty)'} to {after}")
    return 0


def downgrade_command(args: argparse.Namespace) -> int:
    url = _database_url()
    engine = create_catalog_engine(url)
    try:
        before = current_revision(engine)
        downgrade_schema(engine, args.revision)
        after = current_revision(engine)
    finally:
        engine.dispose()
    print(f"catalog database: {safe_url(url)}")
    print(f"downgraded from {before or '(empty)'} to {after or '(empty)'}")
    return 0


def current_command(args: argparse.Namespace) -> int:
    url = _database_url()
    engine = create_catalog_engine(url)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision(layout_of(engine))
    state = "up to date" if current == head else "needs `ml-images db upgrade`"
    print(f"catalog database: {safe_url(url)}")
    print(f"current revision: {current or '(none: not migrated)'}")
    print(f"head revision:    {head} ({state})")
    return 0


def suggest_indexes_command(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    engine = create_catalog_engine(settings.database_url)
    try:
        ensure_schema_current(engine)
        session_factory = make_session_factory(engine)
        product_filter = MercadoLibreFilter(
            session_factory, parse_publication_rules(settings.publication_rules_json), settings.freshness_hours
        )
        selector = ImageCandidateSelector(
            product_filter, settings.no_images_cooldown_hours, settings.claim_lease_seconds
        )
        advice = advise(selector, session_factory)
        statements = advice.statements
        if args.always and not statements:
            from ml_images.catalog.index_advice import index_statement

            statements = [index_statement(engine)]
    finally:
        engine.dispose()
    print(f"catalog database: {safe_url(settings.database_url)} ({layout_of(engine).describe()})")
    verdict = "within" if advice.within_budget else "over"
    print(
        f"pending query: {advice.seconds:.3f} s on {advice.products:,} products "
        f"({verdict} the {BUDGET_SECONDS:g} s budget)"
    )
    if statements:
        print("-- run by the database's owner if wanted; nothing was changed:")
        for statement in statements:
            print(statement)
    else:
        print("no index to suggest")
    return 0
