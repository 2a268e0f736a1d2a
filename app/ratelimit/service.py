"""Multi-tier sliding-window rate limits kept in Postgres, so every app worker (and host)
sees the same counts (RATE-1, RATE-2).

Sliding window counter: the estimate for a window of `w` seconds is the current bucket's
hits plus the previous bucket's hits weighted by how much of it still overlaps the window.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.core.db import Database
from app.ratelimit import repository


@dataclass(frozen=True)
class Tier:
    """At most `limit` hits per `window_s` seconds."""

    name: str
    window_s: int
    limit: int


@dataclass(frozen=True)
class Verdict:
    """Whether a request may pass; if not, which tier refused and when to retry."""

    allowed: bool
    tier: str = ""
    scope: str = ""
    retry_after_s: int = 0


ALLOWED = Verdict(True)


def hashed(value: str) -> str:
    """Counter keys hold no raw client IP."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class Limiter:
    """Checks scopes (an IP, a token, a tenant) against their tiers in one transaction."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self.clock = clock

    async def check(self, scopes: Sequence[tuple[str, Sequence[Tier]]]) -> Verdict:
        """Count one hit in every tier of every scope, or none if any tier refuses."""
        plan = [(scope, tier) for scope, tiers in scopes for tier in tiers if tier.limit > 0]
        keys = [f"{scope}|{tier.window_s}" for scope, tier in plan]
        async with self._db.unscoped() as conn:
            await repository.lock_keys(conn, keys)
            now = self.clock()  # read under the locks: a check never works on stale buckets
            current = [math.floor(now / tier.window_s) for _, tier in plan]
            previous = [b - 1 for b in current]
            hits = await repository.hit(conn, keys, current)
            before = await repository.counts(conn, keys, previous)
            verdict = ALLOWED
            for (scope, tier), key in zip(plan, keys, strict=True):
                wait = _retry_after(tier, now, hits[key], before.get(key, 0))
                if wait is not None:
                    verdict = Verdict(False, tier.name, scope.split(":", 1)[0], wait)
                    await repository.unhit(conn, keys, current)
                    break
            await repository.forget_before(conn, keys, previous)
        return verdict


def _retry_after(tier: Tier, now: float, hits: int, before: int) -> int | None:
    """None if the window's estimate stays within the limit, else seconds to wait."""
    bucket = math.floor(now / tier.window_s)
    elapsed = (now - bucket * tier.window_s) / tier.window_s
    if hits + before * (1 - elapsed) <= tier.limit:
        return None
    if hits > tier.limit or before == 0:
        wait = (bucket + 1) * tier.window_s - now
    else:  # wait until the previous bucket's weight has shrunk enough
        wait = (1 - (tier.limit - hits) / before - elapsed) * tier.window_s
    return max(1, math.ceil(wait))
