"""``ml-images db …`` and ``ml-images catalog load`` through their argparse handlers (URL from the environment)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ml_images.catalog.db import create_catalog_engine, current_revision, head_revision
from ml_images.cli import catalog_command, db_command
from ml_images.errors import SchemaNotMigratedError


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ml-images")
    sub = parser.add_subparsers(dest="command", required=True)
    db_command.register(sub)
    catalog_command.register(sub)
    args = parser.parse_args(argv)
    return int(args.handler(args))


@pytest.fixture
def env_url(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ML_IMAGES_DATABASE_URL", database_url)
    return database_url


def _revision(url: str) -> str | None:
    engine = create_catalog_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def test_db_upgrade_current_downgrade(env_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("db", "current") == 0
    assert "not migrated" in capsys.readouterr().out
    assert _run("db", "upgrade") == 0
    assert f"to {head_revision()}" in capsys.readouterr().out
    assert _revision(env_url) == head_revision()
    assert _run("db", "upgrade") == 0
    assert "already at revision" in capsys.readouterr().out
    assert _run("db", "current") == 0
    assert "up to date" in capsys.readouterr().out
    assert _run("db", "downgrade", "base") == 0
    assert _revision(env_url) is None
    assert _run("db", "upgrade", "--revision", "0001") == 0
    assert _revision(env_url) == "0001"


def test_db_commands_use_the_embedded_default_under_ml_images_home(capsys: pytest.CaptureFixture[str]) -> None:
    import os

    assert _run("db", "upgrade") == 0
    home = Path(os.environ["ML_IMAGES_HOME"])
    assert (home / "catalog.db").is_file()
    assert str(home / "catalog.db") in capsys.readouterr().out


@pytest.mark.postgres
def test_printed_url_hides_the_password(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The test server trusts local connections, so a password in the URL is carried but never checked.
    url = make_url(postgres_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    monkeypatch.setenv("ML_IMAGES_DATABASE_URL", url)
    assert _run("db", "upgrade") == 0
    assert _run("db", "current") == 0
    out = capsys.readouterr().out
    assert "s3cret-pw" not in out
    assert "***" in out


def test_catalog_load_refuses_an_unmigrated_database(env_url: str, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"code": "A"}\n', encoding="utf-8")
    with pytest.raises(SchemaNotMigratedError, match="ml-images db upgrade"):
        _run("catalog", "load", str(path))


def test_catalog_load_reports_counts_and_rejected_rows(
    env_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run("db", "upgrade")
    capsys.readouterr()
    path = tmp_path / "p.jsonl"
    path.write_text(
        "\n".join(json.dumps(r) for r in ({"code": "A", "price": 1}, {"code": "B", "price": "x"})) + "\n",
        encoding="utf-8",
    )
    assert _run("catalog", "load", str(path)) == 1
    out = capsys.readouterr().out
    assert "nothing was written" in out
    assert "line 2: price must be a number" in out

    assert _run("catalog", "load", str(path), "--partial") == 0
    out = capsys.readouterr().out
    assert "inserted 1, updated 0, rejected 1" in out
    assert "rejected line 2: price must be a number" in out

    csv_path = tmp_path / "p.data"
    csv_path.write_text("code,price\nA,2\n", encoding="utf-8")
    assert _run("catalog", "load", str(csv_path), "--format", "csv") == 0
    assert "inserted 0, updated 1, rejected 0" in capsys.readouterr().out
    engine = create_catalog_engine(env_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT code, price FROM product_master")).all() == [("A", 2)]
    finally:
        engine.dispose()
