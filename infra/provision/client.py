"""The official `hcloud` client, with retries that honour Hetzner's `RateLimit-Reset` header.

hcloud retries a 429 after a jittered exponential backoff that ignores when the limit refills;
we retry in the HTTP transport instead, sleeping until `RateLimit-Reset`, and switch hcloud's
own retries off so each call is retried by one policy only. Every request is counted per
resource collection (the benchmark prints API calls per resource).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from hcloud import Client
from requests.adapters import HTTPAdapter

DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"
TOKEN_VARIABLE = "HCLOUD_TOKEN"  # noqa: S105 (the variable's name, not a secret)


class TokenMissingError(Exception):
    pass


class RateLimitAdapter(HTTPAdapter):
    """Retries a 429 once the limit has refilled (and 502/504 after a second), at most
    `attempts` times, never waiting more than `max_wait` s at once."""

    def __init__(
        self,
        attempts: int = 5,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.attempts, self.max_wait, self.sleep = attempts, max_wait, sleep
        self.waits: list[float] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        response = super().send(request, *args, **kwargs)
        for _ in range(self.attempts):
            wait = self._wait(response)
            if wait is None:
                break
            self.waits.append(wait)
            response.close()
            self.sleep(wait)
            response = super().send(request, *args, **kwargs)
        return response

    def _wait(self, response: requests.Response) -> float | None:
        """Seconds to wait before retrying, or None if the answer is final: until the limit
        resets for a 429, a second for a gateway error (hcloud's own policy)."""
        if response.status_code in (502, 504):
            return 1.0
        reset = response.headers.get("RateLimit-Reset", "")
        if response.status_code != 429 or not reset.isdigit():
            return None
        wait = max(0.0, int(reset) - time.time())
        return wait if wait <= self.max_wait else None


class CallCounter:
    """Requests per (method, collection), e.g. ("POST", "servers")."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        path = urlsplit(response.request.url or "").path.split("/v1/", 1)[-1]
        self.calls[(response.request.method or "", path.split("/")[0])] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def token_from_env() -> str:
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise TokenMissingError(
            f"{TOKEN_VARIABLE} is not set: create a read & write API token in the Hetzner "
            "Cloud console (project > Security > API tokens) and export it"
        )
    return token


def make_client(
    token: str, endpoint: str = DEFAULT_ENDPOINT, adapter: RateLimitAdapter | None = None
) -> tuple[Client, CallCounter]:
    """An hcloud client whose transport honours rate limits and counts calls."""
    client = Client(token, api_endpoint=endpoint, poll_interval=0.5, timeout=30)
    base = client._client  # hcloud 2.27: the transport of the Cloud API
    base._retry_max_retries = 0
    session: requests.Session = base._session
    session.mount(endpoint, adapter or RateLimitAdapter())
    counter = CallCounter()
    session.hooks["response"].append(counter)
    return client, counter
