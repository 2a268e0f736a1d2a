"""The crawler's fetcher refuses internal targets after resolution, on every redirect hop,
connects to the address it checked, and caps size and time (VAL-2)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from app.knowledge.ssrf import (
    AddressPolicy,
    FetchLimits,
    SafeFetcher,
    SSRFError,
    forbidden_reason,
    parse_ip_literal,
)
from tests.app.kb_files import LoopbackSite

pytestmark = [pytest.mark.anyio, pytest.mark.claim("VAL-2")]

LOOPBACK_ONLY = AddressPolicy(extra_allowed=(ipaddress.ip_network("127.0.0.1/32"),))

REFUSED = [
    "127.0.0.1", "127.1", "0x7f.1", "0x7f000001", "2130706433", "0177.0.0.1", "017700000001",
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "169.254.169.254",
    "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
    "224.0.0.251", "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1",
    "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "fd00:ec2::254", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:8.8.8.8", "::127.0.0.1",
    "2002:7f00:1::1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:db8::1",
]  # fmt: skip
PUBLIC = ["8.8.8.8", "1.1.1.1", "95.216.1.1", "2606:4700:4700::1111", "2a01:4f9:c010::1"]


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    running = LoopbackSite().start()
    yield running
    running.stop()


def resolver_for(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown test host {host}")
        return table[host]

    return resolve


@pytest.mark.parametrize("spelling", REFUSED)
def test_internal_addresses_in_any_spelling_are_refused(spelling: str) -> None:
    ip = parse_ip_literal(spelling)
    assert ip is not None, spelling
    assert forbidden_reason(ip) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    ip = parse_ip_literal(address)
    assert ip is not None
    assert forbidden_reason(ip) is None


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "0x7f.1", "2130706433", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]"]
)
async def test_loopback_server_is_never_contacted(site: LoopbackSite, host: str) -> None:
    site.pages["/secret"] = ("text/plain", b"internal")
    async with SafeFetcher() as fetcher:
        with pytest.raises(SSRFError, match="refused"):
            await fetcher.get(f"http://{host}:{site.port}/secret")
    assert site.hits["/secret"] == 0


async def test_name_resolving_to_loopback_is_refused(site: LoopbackSite) -> None:
    site.pages["/secret"] = ("text/plain", b"internal")
    async with SafeFetcher() as fetcher:  # the system resolver: localhost is 127.0.0.1 / ::1
        with pytest.raises(SSRFError, match="loopback"):
            await fetcher.get(f"http://localhost:{site.port}/secret")
    assert site.hits["/secret"] == 0


async def test_any_forbidden_answer_refuses_the_name() -> None:
    resolve = resolver_for({"mixed.example": ["93.184.216.34", "169.254.169.254"]})
    async with SafeFetcher(resolver=resolve) as fetcher:
        with pytest.raises(SSRFError, match=r"169\.254\.169\.254 is link-local"):
            await fetcher.get("http://mixed.example/")
    assert fetcher.transport.connected == []


async def test_connection_goes_to_the_checked_address_with_the_original_host(
    site: LoopbackSite,
) -> None:
    """`pinned.example` exists in no DNS: the page can only load if the transport connects
    to the address it checked while sending the name as Host."""
    site.pages["/hello"] = ("text/plain", b"hello")
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    async with SafeFetcher(LOOPBACK_ONLY, resolver=resolve) as fetcher:
        fetched = await fetcher.get(f"http://pinned.example:{site.port}/hello")
    assert fetched.body == b"hello"
    assert site.hosts == [f"pinned.example:{site.port}"]
    assert fetcher.transport.connected == ["127.0.0.1"]
    assert calls == ["pinned.example"]


async def test_rebinding_answer_after_the_check_is_not_used(site: LoopbackSite) -> None:
    """A resolver that answers differently on each call: the first (checked) answer is the
    one connected to; the second hop re-resolves and the internal answer is refused."""
    site.pages["/a"] = ("text/plain", b"a")
    answers = iter([["127.0.0.1"], ["10.0.0.7"]])

    async def resolve(host: str, port: int) -> list[str]:
        return next(answers)

    async with SafeFetcher(LOOPBACK_ONLY, resolver=resolve) as fetcher:
        assert (await fetcher.get(f"http://rebind.example:{site.port}/a")).body == b"a"
        with pytest.raises(SSRFError, match=r"10\.0\.0\.7 is private"):
            await fetcher.get(f"http://rebind.example:{site.port}/a")
    assert fetcher.transport.connected == ["127.0.0.1"]


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/secret",
        "http://0x7f.2:{port}/secret",  # 127.0.0.2: outside the test allowance
        "http://metadata.example/computeMetadata/v1/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:{port}/",
    ],
)
async def test_every_redirect_hop_is_checked_again(site: LoopbackSite, target: str) -> None:
    site.pages["/secret"] = ("text/plain", b"internal")
    resolve = resolver_for({"metadata.example": ["169.254.169.254"], "127.0.0.1": ["127.0.0.1"]})
    start = f"{site.url}/redirect?to={target.format(port=site.port)}"
    async with SafeFetcher(LOOPBACK_ONLY, resolver=resolve) as fetcher:
        with pytest.raises(SSRFError, match="refused"):
            await fetcher.get(start)
    assert site.hits["/redirect"] == 1
    assert site.hits["/secret"] == 0
    assert fetcher.transport.connected == ["127.0.0.1"]  # the first hop only


async def test_redirect_chains_are_capped(site: LoopbackSite) -> None:
    loop = f"{site.url}/redirect?to={site.url}/redirect?to=/redirect?to=/redirect"
    limits = FetchLimits(max_redirects=2)
    async with SafeFetcher(LOOPBACK_ONLY, limits) as fetcher:
        with pytest.raises(SSRFError, match="more than 2 redirects"):
            await fetcher.get(loop)


@pytest.mark.parametrize("path", ["/big", "/bigstream"])
async def test_bodies_over_the_size_cap_are_refused(site: LoopbackSite, path: str) -> None:
    limits = FetchLimits(max_bytes=256 * 1024)
    async with SafeFetcher(LOOPBACK_ONLY, limits) as fetcher:
        with pytest.raises(SSRFError, match="larger than"):
            await fetcher.get(f"{site.url}{path}?size={1024 * 1024}")
        small = await fetcher.get(f"{site.url}/big?size=1000")
    assert len(small.body) == 1000


async def test_slow_responses_hit_the_time_cap(site: LoopbackSite) -> None:
    async with SafeFetcher(LOOPBACK_ONLY, FetchLimits(timeout_s=0.5)) as fetcher:
        with pytest.raises(SSRFError, match=r"longer than 0\.5 s"):
            await fetcher.get(f"{site.url}/slow")
