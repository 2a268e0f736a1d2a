"""SSRF-safe fetching for the crawler (VAL-2).

Every hop of every fetch resolves the host, refuses any non-public address (loopback,
private, link-local incl. the metadata service, multicast, reserved, unspecified, IPv6
unique-local, and IPv4 addresses hidden in IPv6 forms), then connects to exactly the
address it checked: the transport rewrites the URL to the IP and keeps `Host` and TLS SNI,
so a DNS answer that changes between check and connect (rebinding) cannot redirect us.
Redirects are followed by hand so that each hop goes through the same check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import anyio
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SIXTOFOUR = ipaddress.ip_network("2002::/16")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: private in practice
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class SSRFError(ValueError):
    """A URL or address the crawler must not touch; the message says why."""


@dataclass(frozen=True)
class FetchLimits:
    """Caps on one fetch: redirect hops, body bytes and wall time."""

    max_redirects: int = 5
    max_bytes: int = 5 * 1024 * 1024
    timeout_s: float = 15.0


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses a fetch may reach. Only tests widen it (to reach their loopback
    servers); production uses the default, which allows public unicast addresses only."""

    extra_allowed: tuple[IPNetwork, ...] = ()

    def refusal(self, ip: IPAddress) -> str | None:
        """Why `ip` is refused, or None when it may be reached."""
        if any(ip in net for net in self.extra_allowed):
            return None
        return forbidden_reason(ip)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string spells, accepting every spelling a resolver would.

    `inet_aton` takes the BSD forms (`0x7f.1`, `2130706433`, `0177.0.0.1`, `127.1`) that
    `ipaddress` rejects but C libraries happily connect to.
    """
    text = host.strip().strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64, Teredo)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    packed = ip.packed
    if any(ip in net for net in _NAT64) or (packed[:12] == bytes(12) and int(ip) > 1):
        return ipaddress.IPv4Address(packed[12:])
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why an address is not a public unicast one, or None if it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None or ip in _SIXTOFOUR:
            # Mapped/compatible/6to4/NAT64/Teredo forms reach IPv4 hosts by a side door;
            # no site we crawl needs them, so refuse them whatever they embed.
            return f"an IPv6 form embedding IPv4 {inner}"
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local (metadata service range)", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private or ip in _SHARED),
        ("not globally routable", not ip.is_global),
    )
    return next((name for name, hit in checks if hit), None)


async def system_resolver(host: str, port: int) -> list[str]:
    """All addresses the system resolver returns for host:port."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def checked_address(
    host: str, port: int, policy: AddressPolicy, resolver: Resolver
) -> IPAddress:
    """Resolve `host` and return one address, refusing if ANY answer is forbidden."""
    literal = parse_ip_literal(host)
    if literal is not None:
        answers: Sequence[IPAddress] = [literal]
    else:
        try:
            answers = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await resolver(host, port)]
        except OSError as exc:
            raise SSRFError(f"cannot resolve {host!r}: {exc}") from exc
        if not answers:
            raise SSRFError(f"{host!r} resolves to no address")
    for ip in answers:
        reason = policy.refusal(ip)
        if reason:
            raise SSRFError(f"refused {host!r}: address {ip} is {reason}")
    return answers[0]


def check_url(url: httpx.URL) -> None:
    """Only plain http(s) URLs with a host and no credentials are fetched."""
    if url.scheme not in ("http", "https"):
        raise SSRFError(f"refused scheme {url.scheme!r}: only http and https")
    if not url.host:
        raise SSRFError("refused URL without a host")
    if url.userinfo:
        raise SSRFError("refused URL with credentials")


class PinnedTransport(httpx.AsyncBaseTransport):
    """Connects to the address it checked, keeping `Host` and SNI as the URL named them."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver = system_resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = httpx.AsyncHTTPTransport(retries=0)
        self.connected: list[str] = []  # the addresses connected to, for tests and logs

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        check_url(request.url)
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        ip = await checked_address(host, port, self._policy, self._resolver)
        pinned = request.url.copy_with(host=str(ip))
        request.url = pinned
        if request.url.scheme == "https" and parse_ip_literal(host) is None:
            request.extensions = {**request.extensions, "sni_hostname": host}
        self.connected.append(str(ip))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class Fetched:
    """A fetched resource: final URL after redirects, content type and body."""

    url: str
    status: int
    content_type: str
    body: bytes
    hops: list[str] = field(default_factory=list)


class SafeFetcher:
    """GETs URLs with the SSRF checks on every hop and the size and time caps."""

    def __init__(
        self,
        policy: AddressPolicy | None = None,
        limits: FetchLimits | None = None,
        resolver: Resolver = system_resolver,
        user_agent: str = "CloopBot/1.0 (+https://cloop.eu/bot)",
    ) -> None:
        self.limits = limits or FetchLimits()
        self.transport = PinnedTransport(policy or AddressPolicy(), resolver)
        self._client = httpx.AsyncClient(
            transport=self.transport,
            follow_redirects=False,
            timeout=httpx.Timeout(self.limits.timeout_s),
            headers={"User-Agent": user_agent},
            trust_env=False,
        )

    async def __aenter__(self) -> SafeFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def get(self, url: str) -> Fetched:
        """Fetch `url`; raises SSRFError for refused targets and oversized bodies."""
        try:
            with anyio.fail_after(self.limits.timeout_s):
                return await self._follow(httpx.URL(url))
        except TimeoutError as exc:
            raise SSRFError(f"fetch took longer than {self.limits.timeout_s} s") from exc
        except httpx.InvalidURL as exc:
            raise SSRFError(f"refused invalid URL: {exc}") from exc

    async def _follow(self, url: httpx.URL) -> Fetched:
        hops: list[str] = []
        for _ in range(self.limits.max_redirects + 1):
            check_url(url)
            hops.append(str(url))
            async with self._client.stream("GET", url) as response:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    url = url.join(location)
                    continue
                body = await self._read_capped(response)
                ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
                return Fetched(hops[-1], response.status_code, ctype, body, hops)
        raise SSRFError(f"more than {self.limits.max_redirects} redirects")

    async def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limits.max_bytes:
            raise SSRFError(f"response larger than {self.limits.max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():  # decoded: a gzip bomb hits the cap too
            size += len(chunk)
            if size > self.limits.max_bytes:
                raise SSRFError(f"response larger than {self.limits.max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
