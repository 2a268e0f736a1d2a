"""SQL migrations: ``app/migrations/NNNN_name.sql`` applied in order, each once, recorded.

Run as the owner role: at start (``CLOOP_MIGRATE_ON_START``) or by
``python -m app.core.migrations``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from psycopg import AsyncConnection

from app.core.logging import configure_logging, log_event
from app.core.settings import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any constant: serialises concurrent starters (several workers, several hosts).
_LOCK_KEY = 7_361_004_201
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem


class MigrationError(Exception):
    """The migrations directory or a migration is broken."""


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in version order; a misnamed or duplicated version is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_case.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version} is also {found[version].path.name}"
            )
        found[version] = Migration(version, path)
    return [found[v] for v in sorted(found)]


async def apply_migrations(owner_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply what is not yet applied, each in its own transaction; return the names applied."""
    applied_now: list[str] = []
    async with await AsyncConnection.connect(owner_url, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in await cur.fetchall()}
        for migration in discover(directory):
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.path.read_bytes())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    [migration.version, migration.name],
                )
            log_event(log, "migration applied", migration=migration.name)
            applied_now.append(migration.name)
        await conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
    return applied_now


def main() -> int:
    """CLI: apply pending migrations with ``CLOOP_OWNER_DATABASE_URL``."""
    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        applied = asyncio.run(apply_migrations(settings.owner_database_url))
    except Exception as exc:  # a CLI answers with one line, never a traceback
        print(f"migrations failed: {exc}", file=sys.stderr)
        return 1
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
