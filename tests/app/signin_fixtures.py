"""Fixtures of the sign-in tests: the OIDC and SAML stand-ins on loopback, settings pointing
the app at them, and a browser-like helper that walks a flow through the real client code.

Import the fixture functions into a test module (`from tests.app.signin_fixtures import ...`)
to make `signin`, `oidc_standin` and `saml_standin` available there.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from app.core.db import Database
from app.signin.endpoints import signin_settings
from app.signin.settings import SigninSettings
from app.standins.oidc import OidcStandin, app_env
from app.standins.saml import SamlStandin

REDIRECT_URI = "https://app.cloop.test/signin/callback"
PUBLIC_URL = "https://api.cloop.test"
_FORM_FIELD = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')
_FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)">')


@pytest.fixture(scope="session", name="oidc_standin")
def oidc_standin_fixture() -> Iterator[OidcStandin]:
    standin = OidcStandin()
    server = standin.start()
    yield standin
    server.stop()


@pytest.fixture(scope="session", name="saml_standin")
def saml_standin_fixture() -> Iterator[SamlStandin]:
    standin = SamlStandin()
    server = standin.start()
    yield standin
    server.stop()


def settings_for(oidc: OidcStandin) -> SigninSettings:
    """The app's sign-in settings for the stand-in (the same ones `python -m` prints)."""
    env = app_env(oidc, *oidc.register_client())
    fields = {name.removeprefix("CLOOP_SIGNIN_").lower(): value for name, value in env.items()}
    return SigninSettings(redirect_uri=REDIRECT_URI, public_url=PUBLIC_URL, **fields)


@dataclass
class Signin:
    """Plays the browser and the dashboard: talks to the app and to the stand-ins."""

    client: httpx.AsyncClient
    db: Database
    settings: SigninSettings
    oidc: OidcStandin
    saml: SamlStandin

    async def start(self, provider: str) -> str:
        response = await self.client.post(f"/api/v1/signin/{provider}/start")
        assert response.status_code == 200, response.text
        url: str = response.json()["authorization_url"]
        return url

    async def authorize(self, url: str, login_hint: str | None = None) -> dict[str, str]:
        """Visit the provider's authorization URL; the query of the redirect back (code, state)."""
        if login_hint:
            url += "&" + urlencode({"login_hint": login_hint})
        async with httpx.AsyncClient() as browser:
            response = await browser.get(url)
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(f"{REDIRECT_URI}?")
        return dict(parse_qsl(urlsplit(location).query))

    async def callback(self, code: str, state: str) -> httpx.Response:
        return await self.client.post(
            "/api/v1/signin/callback", json={"code": code, "state": state}
        )

    async def sign_in(self, provider: str, login_hint: str | None = None) -> httpx.Response:
        """A whole authorization-code flow: start, consent at the provider, callback."""
        redirect = await self.authorize(await self.start(provider), login_hint)
        return await self.callback(redirect["code"], redirect["state"])

    async def sso_start(self, tenant_id: Any) -> str:
        response = await self.client.post(
            "/api/v1/signin/sso/start", json={"tenant_id": str(tenant_id)}
        )
        assert response.status_code == 200, response.text
        url: str = response.json()["authorization_url"]
        return url

    async def idp_form(self, url: str, email: str) -> tuple[str, dict[str, str]]:
        """Visit the SAML IdP as `email`; the ACS path and fields of its auto-posting form."""
        self.saml.email = email
        async with httpx.AsyncClient() as browser:
            response = await browser.get(url)
        assert response.status_code == 200, response.text
        action = _FORM_ACTION.search(response.text)
        assert action is not None
        fields = {name: html.unescape(value) for name, value in _FORM_FIELD.findall(response.text)}
        acs = html.unescape(action.group(1))
        assert acs.startswith(PUBLIC_URL)
        return acs.removeprefix(PUBLIC_URL), fields

    async def post_acs(self, acs_path: str, fields: dict[str, str]) -> httpx.Response:
        return await self.client.post(acs_path, data=fields)


@pytest.fixture(name="signin")
async def signin_fixture(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: Database,
    oidc_standin: OidcStandin,
    saml_standin: SamlStandin,
) -> AsyncIterator[Signin]:
    """The app configured for the stand-ins, and the helper that walks flows through it."""
    helper = Signin(client, db, settings_for(oidc_standin), oidc_standin, saml_standin)
    app.dependency_overrides[signin_settings] = lambda: helper.settings  # changeable per test
    yield helper
    app.dependency_overrides.pop(signin_settings, None)


async def audit_rows(db: Database, event: str) -> list[dict[str, Any]]:
    """Every audit row of an event, across tenants (owner role)."""
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT tenant_id, actor, ip, outcome, detail FROM audit_events"
            " WHERE event = %s ORDER BY id",
            [event],
        )
        return await cur.fetchall()
