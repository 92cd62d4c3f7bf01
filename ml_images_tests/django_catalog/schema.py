"""What a table looks like in the database: columns, indexes, constraints, triggers, foreign keys into it.

A snapshot taken before and after a run proves that the run added nothing to a table it must not alter:
``schema_changes(before, after)`` lists every difference in words (an empty list means untouched).

PostgreSQL: columns from ``information_schema.columns``; indexes from ``pg_indexes`` (their full ``CREATE INDEX``
text); constraints and triggers from ``pg_constraint`` / ``pg_trigger`` with their definitions as PostgreSQL prints
them (``information_schema`` has no index view, and its constraint and trigger views omit the definitions that make
two states comparable, e.g. ``DEFERRABLE INITIALLY DEFERRED``). Internal triggers (those PostgreSQL creates for
foreign keys) are left out; the foreign keys themselves are listed, both the table's own and, under
``referenced_by``, those of other tables that point at it: a new table whose foreign key references a Django table
changes what may be deleted from it, so it counts as altering it.

SQLite: ``PRAGMA table_xinfo``, ``index_list``/``index_info`` and ``foreign_key_list`` (through their table-valued
forms, which take bound parameters), and the table's own ``CREATE TABLE`` text from ``sqlite_master``, which is
where SQLite keeps CHECK constraints and deferrability.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    default: str | None
    identity: str | None = None  # PostgreSQL identity generation (``BY DEFAULT`` for Django's ids), else None

    def describe(self) -> str:
        text = f"{self.name} {self.type} {'NULL' if self.nullable else 'NOT NULL'}"
        if self.identity:
            text += f" GENERATED {self.identity} AS IDENTITY"
        if self.default is not None:
            text += f" DEFAULT {self.default}"
        return text


@dataclass(frozen=True)
class SchemaObject:
    """An index, constraint or trigger: its name, its kind and its definition as the database states it."""

    name: str
    kind: str
    definition: str


@dataclass(frozen=True)
class TableSchema:
    table: str
    columns: tuple[Column, ...]  # in the table's column order
    indexes: tuple[SchemaObject, ...]
    constraints: tuple[SchemaObject, ...]
    triggers: tuple[SchemaObject, ...]
    referenced_by: tuple[SchemaObject, ...]  # foreign keys of other tables that point at this one

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.table} has no column {name!r}")

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


def describe_tables(url: str, tables: Iterable[str]) -> dict[str, TableSchema]:
    """Snapshots of ``tables`` in the database at ``url`` (a SQLAlchemy URL), read on a connection of its own."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return {table: describe_table(conn, table) for table in tables}
    finally:
        engine.dispose()


def describe_table(conn: sa.Connection, table: str) -> TableSchema:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return _describe_postgresql(conn, table)
    if dialect == "sqlite":
        return _describe_sqlite(conn, table)
    raise ValueError(f"cannot describe tables on {dialect!r}")


def schema_changes(before: Mapping[str, TableSchema], after: Mapping[str, TableSchema]) -> list[str]:
    """Every difference between two snapshots, one line each; ``[]`` when the tables are as they were."""
    changes: list[str] = []
    for table in sorted(set(before) | set(after)):
        if table not in after:
            changes.append(f"{table}: table no longer described")
            continue
        if table not in before:
            changes.append(f"{table}: table not described before")
            continue
        old, new = before[table], after[table]
        changes += _keyed_changes(
            table,
            "column",
            {c.name: c.describe() for c in old.columns},
            {c.name: c.describe() for c in new.columns},
        )
        if [c for c in old.column_names if c in new.column_names] != [
            c for c in new.column_names if c in old.column_names
        ]:
            changes.append(f"{table}: column order changed: {old.column_names} -> {new.column_names}")
        for label, old_items, new_items in (
            ("index", old.indexes, new.indexes),
            ("constraint", old.constraints, new.constraints),
            ("trigger", old.triggers, new.triggers),
            ("foreign key into it", old.referenced_by, new.referenced_by),
        ):
            changes += _keyed_changes(table, label, _by_name(old_items), _by_name(new_items))
    return changes


def _by_name(items: Sequence[SchemaObject]) -> dict[str, str]:
    return {item.name: f"{item.kind}: {item.definition}" for item in items}


def _keyed_changes(table: str, label: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    changes = [f"{table}: {label} added: {name} = {new[name]}" for name in new if name not in old]
    changes += [f"{table}: {label} removed: {name} = {old[name]}" for name in old if name not in new]
    changes += [
        f"{table}: {label} changed: {name}: {old[name]} -> {new[name]}"
        for name in old
        if name in new and old[name] != new[name]
    ]
    return changes


# --- PostgreSQL --------------------------------------------------------------------------------------------------

_PG_CONSTRAINT_KINDS = {
    "c": "CHECK",
    "f": "FOREIGN KEY",
    "p": "PRIMARY KEY",
    "u": "UNIQUE",
    "t": "CONSTRAINT TRIGGER",
    "x": "EXCLUDE",
    "n": "NOT NULL",
}


def _describe_postgresql(conn: sa.Connection, table: str) -> TableSchema:
    rows = conn.execute(
        sa.text(
            "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, is_nullable, "
            "column_default, is_identity, identity_generation "
            "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = :table "
            "ORDER BY ordinal_position"
        ),
        {"table": table},
    ).all()
    if not rows:
        raise LookupError(f"no table {table!r} in the current schema")
    columns = tuple(
        Column(
            name=row.column_name,
            type=_pg_type(row.data_type, row.character_maximum_length, row.numeric_precision, row.numeric_scale),
            nullable=row.is_nullable == "YES",
            default=row.column_default,
            identity=row.identity_generation if row.is_identity == "YES" else None,
        )
        for row in rows
    )
    indexes = tuple(
        SchemaObject(name=row.indexname, kind="INDEX", definition=row.indexdef)
        for row in conn.execute(
            sa.text(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema() AND tablename = :table ORDER BY indexname"
            ),
            {"table": table},
        )
    )
    constraints = tuple(
        SchemaObject(name=row.conname, kind=_PG_CONSTRAINT_KINDS.get(row.contype, row.contype), definition=row.def_)
        for row in conn.execute(
            sa.text(
                "SELECT c.conname, c.contype, pg_get_constraintdef(c.oid, true) AS def_ FROM pg_constraint c "
                "WHERE c.conrelid = CAST(:qualified AS regclass) ORDER BY c.conname"
            ),
            {"qualified": _pg_qualified(conn, table)},
        )
    )
    triggers = tuple(
        SchemaObject(name=row.tgname, kind="TRIGGER", definition=row.def_)
        for row in conn.execute(
            sa.text(
                "SELECT t.tgname, pg_get_triggerdef(t.oid, true) AS def_ FROM pg_trigger t "
                "WHERE t.tgrelid = CAST(:qualified AS regclass) AND NOT t.tgisinternal ORDER BY t.tgname"
            ),
            {"qualified": _pg_qualified(conn, table)},
        )
    )
    referenced_by = tuple(
        SchemaObject(name=f"{row.relname}.{row.conname}", kind="FOREIGN KEY", definition=row.def_)
        for row in conn.execute(
            sa.text(
                "SELECT r.relname, c.conname, pg_get_constraintdef(c.oid, true) AS def_ FROM pg_constraint c "
                "JOIN pg_class r ON r.oid = c.conrelid "
                "WHERE c.contype = 'f' AND c.confrelid = CAST(:qualified AS regclass) AND c.conrelid <> c.confrelid "
                "ORDER BY r.relname, c.conname"
            ),
            {"qualified": _pg_qualified(conn, table)},
        )
    )
    return TableSchema(table, columns, indexes, constraints, triggers, referenced_by)


def _pg_qualified(conn: sa.Connection, table: str) -> str:
    preparer = conn.dialect.identifier_preparer
    schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    return f"{preparer.quote_identifier(schema)}.{preparer.quote_identifier(table)}"


def _pg_type(data_type: str, length: int | None, precision: int | None, scale: int | None) -> str:
    if length is not None:
        return f"{data_type}({length})"
    if data_type == "numeric" and precision is not None:
        return f"numeric({precision},{scale or 0})"
    return str(data_type)


# --- SQLite ------------------------------------------------------------------------------------------------------


def _describe_sqlite(conn: sa.Connection, table: str) -> TableSchema:
    table_sql = conn.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :table"), {"table": table}
    ).scalar_one_or_none()
    if table_sql is None:
        raise LookupError(f"no table {table!r}")
    columns = tuple(
        Column(name=row.name, type=row.type, nullable=not row.notnull and not row.pk, default=row.dflt_value)
        for row in conn.execute(sa.text("SELECT * FROM pragma_table_xinfo(:table) ORDER BY cid"), {"table": table})
    )
    indexes = tuple(
        _sqlite_index(conn, row)
        for row in conn.execute(
            sa.text('SELECT name, "unique", origin, partial FROM pragma_index_list(:table) ORDER BY name'),
            {"table": table},
        )
    )
    constraints = (
        SchemaObject(name="<CREATE TABLE>", kind="TABLE", definition=table_sql),
        *(
            SchemaObject(name=f"fk {definition}", kind="FOREIGN KEY", definition=definition)
            for definition in _sqlite_foreign_keys(conn, table, to_table=None)
        ),
    )
    triggers = tuple(
        SchemaObject(name=row.name, kind="TRIGGER", definition=row.sql or "")
        for row in conn.execute(
            sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :table ORDER BY name"),
            {"table": table},
        )
    )
    others = conn.execute(
        sa.text("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> :table ORDER BY name"),
        {"table": table},
    ).scalars()
    referenced_by = tuple(
        SchemaObject(name=f"{other}: {definition}", kind="FOREIGN KEY", definition=definition)
        for other in list(others)
        for definition in _sqlite_foreign_keys(conn, other, to_table=table)
    )
    return TableSchema(
        table, columns, tuple(sorted(indexes, key=lambda i: i.name)), constraints, triggers, referenced_by
    )


def _sqlite_index(conn: sa.Connection, row: sa.Row[Any]) -> SchemaObject:
    name, unique, origin, partial = row.name, row.unique, row.origin, row.partial
    index_columns = conn.execute(
        sa.text("SELECT name FROM pragma_index_info(:index) ORDER BY seqno"), {"index": name}
    ).scalars()
    sql = conn.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :index"), {"index": name}
    ).scalar_one_or_none()
    # Indexes SQLite creates itself (UNIQUE and PRIMARY KEY constraints) have no SQL text of their own.
    definition = sql or f"{'UNIQUE ' if unique else ''}({', '.join(str(c) for c in index_columns)})"
    return SchemaObject(name=name, kind=f"INDEX origin={origin}{' partial' if partial else ''}", definition=definition)


def _sqlite_foreign_keys(conn: sa.Connection, table: str, to_table: str | None) -> list[str]:
    grouped: dict[int, list[sa.Row[Any]]] = {}
    for row in conn.execute(
        sa.text("SELECT * FROM pragma_foreign_key_list(:table) ORDER BY id, seq"), {"table": table}
    ):
        grouped.setdefault(row.id, []).append(row)
    definitions = []
    for rows in grouped.values():
        target = rows[0].table
        if to_table is not None and target != to_table:
            continue
        source = ", ".join(str(r._mapping["from"]) for r in rows)
        referred = ", ".join(str(r.to) for r in rows)
        definitions.append(
            f"FOREIGN KEY ({source}) REFERENCES {target}({referred}) "
            f"ON UPDATE {rows[0].on_update} ON DELETE {rows[0].on_delete} MATCH {rows[0].match}"
        )
    return sorted(definitions)
