"""Create the two database roles and a database for Cloop, as a superuser.

Used by the test fixtures, ``./scripts/app`` and the deploy: the owner role owns the schema
and bypasses RLS (migrations, purges); the app role is what requests use (no BYPASSRLS).
"""

from __future__ import annotations

from psycopg import Connection, sql

OWNER_ROLE = "cloop_owner"
APP_ROLE = "cloop_app"


def _ensure_role(
    conn: Connection[tuple[object, ...]], role: str, attrs: sql.SQL, pw: str | None
) -> None:
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
    verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
    password = sql.SQL(" PASSWORD {}").format(sql.Literal(pw)) if pw else sql.SQL("")
    conn.execute(
        sql.SQL("{} ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE {}{}").format(
            verb, sql.Identifier(role), attrs, password
        )
    )


def ensure_roles(superuser_url: str, passwords: dict[str, str] | None = None) -> None:
    """Create or update ``cloop_owner`` (BYPASSRLS) and ``cloop_app`` (NOBYPASSRLS)."""
    passwords = passwords or {}
    with Connection.connect(superuser_url, autocommit=True) as conn:
        _ensure_role(conn, OWNER_ROLE, sql.SQL("BYPASSRLS"), passwords.get(OWNER_ROLE))
        _ensure_role(conn, APP_ROLE, sql.SQL("NOBYPASSRLS"), passwords.get(APP_ROLE))


def ensure_database(superuser_url: str, dbname: str, template: str | None = None) -> bool:
    """Create ``dbname`` owned by the owner role (optionally from a template); True if created."""
    with Connection.connect(superuser_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone():
            return False
        query = sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(dbname), sql.Identifier(OWNER_ROLE)
        )
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(query)
        conn.execute(
            sql.SQL(
                "REVOKE ALL ON DATABASE {db} FROM PUBLIC; GRANT CONNECT ON DATABASE {db} TO {app}"
            ).format(db=sql.Identifier(dbname), app=sql.Identifier(APP_ROLE))
        )
    with Connection.connect(superuser_url, dbname=dbname, autocommit=True) as conn:
        # Extensions need a superuser; the schema belongs to the owner, the app may only use it.
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(
            sql.SQL(
                "REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
                " ALTER SCHEMA public OWNER TO {owner}; GRANT USAGE ON SCHEMA public TO {app}"
            ).format(owner=sql.Identifier(OWNER_ROLE), app=sql.Identifier(APP_ROLE))
        )
    return True


def drop_database(superuser_url: str, dbname: str) -> None:
    """Drop ``dbname``, disconnecting whoever is still on it."""
    with Connection.connect(superuser_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
