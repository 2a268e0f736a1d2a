"""Which rows of which table belong to a data subject, derived from the live schema.

Export and erasure walk this catalog instead of a hand-kept list of tables, so a table added
by a later migration is covered as soon as it follows the conventions of the schema:
``tenant_id`` marks tenant data, ``visitor_id`` visitor data, a foreign key to ``users``
account data, and rows that reference such rows through foreign keys go with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from psycopg import sql

from app.core.db import Connection

TENANTS = "tenants"
USERS = "users"
# Columns that name who did something: kept in the audit trail, but only as a pseudonym.
PSEUDONYMISED_COLUMNS = frozenset({"actor", "subject_ref"})
# Never exported: credentials and secrets (stored hashed or encrypted) and derived vectors.
_SECRET_NAME = re.compile(
    r"(_hash|secret|password|private_key|_enc|verifier|nonce)$|^(secret|password)"
)
_DERIVED_TYPES = frozenset({"vector", "halfvec", "sparsevec", "bytea"})


class SubjectKind(StrEnum):
    ACCOUNT = "account"
    TENANT = "tenant"
    VISITOR = "visitor"


@dataclass(frozen=True)
class Subject:
    """A data subject: a user account, a tenant (customer) or a visitor of one tenant."""

    kind: SubjectKind
    ids: tuple[str, ...]  # one user or tenant id; one or more visitor ids (same e-mail)
    tenant_id: str | None = None  # the visitors' tenant
    email: str | None = None  # the account's e-mail, matched in tables that copy it
    aliases: tuple[str, ...] = ()  # other names of the subject (a visitor's lead e-mails)

    def refs(self) -> tuple[str, ...]:
        """Every value that names the subject in a free-text reference (actor, request)."""
        return self.ids + self.aliases + ((self.email,) if self.email else ())


@dataclass(frozen=True)
class ForeignKey:
    table: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    sets_null: bool  # ON DELETE SET NULL: the schema says the row outlives its parent


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, str]  # name -> type name
    nullable: frozenset[str]

    def has(self, column: str) -> bool:
        return column in self.columns

    def omitted_columns(self) -> dict[str, str]:
        """Columns an export leaves out, with the reason (secrets, derived vectors)."""
        omitted = {}
        for name, type_name in self.columns.items():
            if _SECRET_NAME.search(name):
                omitted[name] = "secret, credential or hash"
            elif type_name in _DERIVED_TYPES:
                omitted[name] = "derived binary data (hash or vector)"
        return omitted


@dataclass(frozen=True)
class Where:
    """A parameterised condition on one table, aliased ``t``."""

    sql: sql.Composable
    params: tuple[Any, ...]

    @staticmethod
    def any_of(parts: list[Where]) -> Where:
        joined = sql.SQL(" OR ").join(sql.SQL("({})").format(p.sql) for p in parts)
        return Where(joined, tuple(v for p in parts for v in p.params))


@dataclass(frozen=True)
class Update:
    """Set ``column`` of the subject's rows to ``value`` (NULL or the subject's pseudonym);
    with a ``pattern``, replace only what matches it inside the (JSON) column."""

    table: str
    column: str
    where: Where
    pseudonymise: bool
    pattern: str | None = None


@dataclass
class Plan:
    """The subject's rows: tables to empty (children first) and columns to clear."""

    deletions: dict[str, Where] = field(default_factory=dict)
    updates: list[Update] = field(default_factory=list)

    def selections(self) -> dict[str, Where]:
        """Every table with rows about the subject and the condition finding them."""
        found: dict[str, list[Where]] = {name: [w] for name, w in self.deletions.items()}
        for update in self.updates:
            found.setdefault(update.table, []).append(update.where)
        return {name: Where.any_of(parts) for name, parts in sorted(found.items())}


@dataclass(frozen=True)
class Catalog:
    tables: dict[str, Table]
    foreign_keys: tuple[ForeignKey, ...]

    def tenant_tables(self) -> set[str]:
        return {n for n, t in self.tables.items() if t.has("tenant_id")} | {TENANTS}

    def visitor_tables(self) -> set[str]:
        return {n for n, t in self.tables.items() if t.has("visitor_id")}

    def account_tables(self) -> set[str]:
        return {fk.table for fk in self.foreign_keys if fk.parent == USERS} | {USERS}

    def children_first(self, names: Iterable[str]) -> list[str]:
        """``names`` ordered so that a table comes before every table it references."""
        pending = set(names)
        ordered: list[str] = []
        while pending:
            leaves = sorted(
                n
                for n in pending
                if not any(
                    fk.parent == n and fk.table in pending and fk.table != n
                    for fk in self.foreign_keys
                )
            )
            batch = leaves or sorted(pending)[:1]  # a cycle: break it anywhere
            ordered.extend(batch)
            pending.difference_update(batch)
        return ordered

    def plan(self, subject: Subject) -> Plan:
        """The subject's rows in every table: direct matches, then what references them."""
        direct: dict[str, list[Where]] = {}
        updates: list[Update] = []
        for table in self.tables.values():
            deletes, table_updates = self._direct(table, subject)
            if deletes:
                direct[table.name] = deletes
            updates.extend(table_updates)
        return self.cascade(direct, updates)

    def cascade(self, direct: dict[str, list[Where]], updates: list[Update] | None = None) -> Plan:
        """Rows selected in ``direct`` plus every row referencing them, children first."""
        updates = list(updates or [])
        wheres = self._with_dependents(direct, updates)
        ordered = self.children_first(wheres)
        return Plan({name: wheres[name] for name in ordered}, updates)

    def _direct(self, table: Table, subject: Subject) -> tuple[list[Where], list[Update]]:
        deletes: list[Where] = []
        updates: list[Update] = []
        root = {SubjectKind.TENANT: TENANTS, SubjectKind.ACCOUNT: USERS}.get(subject.kind)
        if table.name == root:
            deletes.append(_eq(table, "id", subject.ids))
        if subject.kind is SubjectKind.TENANT and table.has("tenant_id"):
            deletes.append(_eq(table, "tenant_id", subject.ids))
        if subject.kind is SubjectKind.VISITOR and table.has("visitor_id"):
            deletes.append(_within_tenant(table, subject, _eq(table, "visitor_id", subject.ids)))
        for fk in self.foreign_keys:
            if fk.table != table.name or fk.parent != root or len(fk.columns) != 1:
                continue
            (column,) = fk.columns
            if fk.sets_null and column in table.nullable:
                updates.append(Update(table.name, column, _eq(table, column, subject.ids), False))
            elif column != "tenant_id":
                deletes.append(_eq(table, column, subject.ids))
        if subject.kind is SubjectKind.ACCOUNT and subject.email and _copies_email(table):
            deletes.append(_email(subject.email))
        if PSEUDONYMISED_COLUMNS & table.columns.keys():
            updates.extend(_pseudonymised(table, subject))
        return deletes, updates

    def _with_dependents(
        self, direct: dict[str, list[Where]], updates: list[Update]
    ) -> dict[str, Where]:
        """Add rows referencing selected rows (or clear the reference where it may be NULL)."""
        parts = {name: list(ws) for name, ws in direct.items()}
        done: set[ForeignKey] = set()
        changed = True
        while changed:
            changed = False
            for fk in self.foreign_keys:
                if fk in done or fk.parent not in parts or fk.table == fk.parent:
                    continue
                done.add(fk)
                changed = True
                cond = _references(fk, Where.any_of(parts[fk.parent]))
                child = self.tables[fk.table]
                if fk.sets_null and all(c in child.nullable for c in fk.columns):
                    updates.extend(Update(fk.table, c, cond, False) for c in fk.columns)
                else:
                    parts.setdefault(fk.table, []).append(cond)
        return {name: Where.any_of(ws) for name, ws in parts.items()}


def _pseudonymised(table: Table, subject: Subject) -> list[Update]:
    """An audit-like table keeps its rows; names of the subject become the pseudonym, in the
    who-column and inside JSON details (an invitation's e-mail, say)."""
    updates = []
    for column in sorted(PSEUDONYMISED_COLUMNS & table.columns.keys()):
        refs = _within_tenant(table, subject, _eq(table, column, subject.refs()))
        updates.append(Update(table.name, column, refs, True))
    pattern = "|".join(re.escape(ref) for ref in subject.refs())
    for column, type_name in sorted(table.columns.items()):
        if type_name == "jsonb":
            found = Where(sql.SQL("t.{}::text ~* %s").format(sql.Identifier(column)), (pattern,))
            found = _within_tenant(table, subject, found)
            updates.append(Update(table.name, column, found, True, pattern))
    return updates


def _eq(table: Table, column: str, values: tuple[str, ...]) -> Where:
    """``column`` is one of ``values``, cast to the column's type so that indexes serve it."""
    return Where(
        sql.SQL("t.{} = ANY(%s::{}[])").format(
            sql.Identifier(column), sql.Identifier(table.columns[column])
        ),
        (list(values),),
    )


def _email(email: str) -> Where:
    return Where(sql.SQL("lower(t.email) = lower(%s)"), (email,))


def _within_tenant(table: Table, subject: Subject, where: Where) -> Where:
    """Visitor ids are only unique within their tenant: never match outside it."""
    if subject.kind is not SubjectKind.VISITOR or not table.has("tenant_id"):
        return where
    tenant = _eq(table, "tenant_id", (subject.tenant_id or "",))
    both = sql.SQL("{} AND {}").format(tenant.sql, where.sql)
    return Where(both, tenant.params + where.params)


def _copies_email(table: Table) -> bool:
    """A table keeping an account's e-mail (an invitation); visitors' e-mails are not theirs."""
    return table.name != USERS and table.has("email") and not table.has("visitor_id")


def _references(fk: ForeignKey, parent_where: Where) -> Where:
    """Rows of ``fk.table`` whose foreign key points at a selected row of ``fk.parent``."""
    query = sql.SQL("({cols}) IN (SELECT {pcols} FROM {parent} AS t WHERE {where})").format(
        cols=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in fk.columns),
        pcols=sql.SQL(", ").join(
            sql.SQL("t.{}").format(sql.Identifier(c)) for c in fk.parent_columns
        ),
        parent=sql.Identifier(fk.parent),
        where=parent_where.sql,
    )
    return Where(query, parent_where.params)


_COLUMNS = """
SELECT c.relname AS table_name, a.attname AS column_name, ty.typname AS type_name,
       NOT a.attnotnull AS nullable
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type ty ON ty.oid = a.atttypid
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname, a.attnum
"""
_FOREIGN_KEYS = """
SELECT child.relname AS table_name, parent.relname AS parent_name,
       con.confdeltype = 'n' AS sets_null,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.i)::text[] AS columns,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
             ORDER BY k.i)::text[] AS parent_columns
FROM pg_constraint con
JOIN pg_class child ON child.oid = con.conrelid
JOIN pg_class parent ON parent.oid = con.confrelid
WHERE con.contype = 'f' AND con.connamespace = current_schema()::regnamespace
ORDER BY con.conname
"""


async def load_catalog(conn: Connection) -> Catalog:
    """Read tables, columns and foreign keys of the current schema."""
    columns: dict[str, dict[str, str]] = {}
    nullable: dict[str, set[str]] = {}
    for row in await (await conn.execute(_COLUMNS)).fetchall():
        columns.setdefault(row["table_name"], {})[row["column_name"]] = row["type_name"]
        if row["nullable"]:
            nullable.setdefault(row["table_name"], set()).add(row["column_name"])
    tables = {
        name: Table(name, cols, frozenset(nullable.get(name, ()))) for name, cols in columns.items()
    }
    fks = tuple(
        ForeignKey(
            row["table_name"],
            tuple(row["columns"]),
            row["parent_name"],
            tuple(row["parent_columns"]),
            bool(row["sets_null"]),
        )
        for row in await (await conn.execute(_FOREIGN_KEYS)).fetchall()
        if row["table_name"] in tables
    )
    return Catalog(tables, fks)
