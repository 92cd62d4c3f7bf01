"""``ml-images db upgrade|downgrade|current``: the catalog schema (Alembic, configured in code)."""

from __future__ import annotations

import argparse
from typing import Any

from ml_images.catalog.db import (
    create_catalog_engine,
    current_revision,
    downgrade_schema,
    head_revision,
    safe_url,
    upgrade_schema,
)
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


def _database_url() -> str:
    return Settings.from_env().database_url


def upgrade_command(args: argparse.Namespace) -> int:
    url = _database_url()
    engine = create_catalog_engine(url)
    try:
        before = current_revision(engine)
        upgrade_schema(engine, args.revision)
        after = current_revision(engine)
    finally:
        engine.dispose()
    print(f"catalog database: {safe_url(url)}")
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
    head = head_revision()
    state = "up to date" if current == head else "needs `ml-images db upgrade`"
    print(f"catalog database: {safe_url(url)}")
    print(f"current revision: {current or '(none: not migrated)'}")
    print(f"head revision:    {head} ({state})")
    return 0
