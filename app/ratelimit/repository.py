"""SQL of the shared rate-limit counters (table rate_counters, not tenant data)."""

from __future__ import annotations

from app.core.db import Connection


async def lock_keys(conn: Connection, keys: list[str]) -> None:
    """Serialise checks that share a key, across every worker, until the transaction ends.

    Locks are taken in one global order (by lock id), so two checks with overlapping keys
    never wait on each other in a cycle; every later statement touches only locked keys.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h"
        " FROM unnest(%s::text[]) AS k ORDER BY h) AS ordered",
        [keys],
    )


async def hit(conn: Connection, keys: list[str], buckets: list[int]) -> dict[str, int]:
    """Add one hit to each (key, bucket) and return the new counts (keys locked first)."""
    cur = await conn.execute(
        "INSERT INTO rate_counters (key, bucket, hits)"
        " SELECT k, b, 1 FROM unnest(%s::text[], %s::bigint[]) AS t (k, b) ORDER BY k"
        " ON CONFLICT (key, bucket) DO UPDATE SET hits = rate_counters.hits + 1"
        " RETURNING key, hits",
        [keys, buckets],
    )
    return {row["key"]: int(row["hits"]) for row in await cur.fetchall()}


async def counts(conn: Connection, keys: list[str], buckets: list[int]) -> dict[str, int]:
    """Counts of the given (key, bucket) pairs; missing pairs are absent."""
    cur = await conn.execute(
        "SELECT c.key, c.hits FROM rate_counters c"
        " JOIN unnest(%s::text[], %s::bigint[]) AS t (k, b) ON c.key = t.k AND c.bucket = t.b",
        [keys, buckets],
    )
    return {row["key"]: int(row["hits"]) for row in await cur.fetchall()}


async def unhit(conn: Connection, keys: list[str], buckets: list[int]) -> None:
    """Take back the hits of a refused request (refusals do not eat the budget)."""
    await conn.execute(
        "UPDATE rate_counters c SET hits = c.hits - 1"
        " FROM unnest(%s::text[], %s::bigint[]) AS t (k, b) WHERE c.key = t.k AND c.bucket = t.b",
        [keys, buckets],
    )


async def forget_before(conn: Connection, keys: list[str], oldest: list[int]) -> None:
    """Drop buckets no window can still see."""
    await conn.execute(
        "DELETE FROM rate_counters c USING unnest(%s::text[], %s::bigint[]) AS t (k, b)"
        " WHERE c.key = t.k AND c.bucket < t.b",
        [keys, oldest],
    )
