"""OpenID Connect / OAuth 2.0 provider stand-in shaped like Google, Microsoft Entra and GitHub.

It speaks the real wire protocol (discovery, JWKS, authorization code + PKCE S256, token,
userinfo; GitHub's plain OAuth with its /user and /user/emails APIs) so the app's sign-in
client code runs unchanged against it. The authorization endpoint auto-approves: the account
is the one named by `login_hint` (created on first use), else the default account. Tests can
queue faults so the next ID token is wrong in one precise way.

Run: `python -m app.standins.oidc [--port N]`: prints one JSON line whose `env` holds the
app's CLOOP_SIGNIN_* settings for it (one generated client for all three shapes).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse

from app.standins import RunningServer, base_url, bind_loopback, serve_forever, serve_in_thread

MULTI_TENANT = frozenset({"common", "organizations", "consumers"})
TOKEN_LIFETIME = 3600


class Shape(StrEnum):
    """Which real provider's URLs, claims and quirks to imitate."""

    GOOGLE = "google"
    MICROSOFT = "microsoft"
    GITHUB = "github"


class Fault(StrEnum):
    """One way to make the next ID token invalid."""

    WRONG_AUDIENCE = "wrong_audience"
    EXPIRED = "expired"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KID = "unknown_kid"
    WRONG_NONCE = "wrong_nonce"
    WRONG_ISSUER = "wrong_issuer"


@dataclass(frozen=True)
class Account:
    """The person the stand-in signs in."""

    email: str
    name: str = "Test User"
    email_verified: bool = True
    hosted_domain: str | None = None  # Google Workspace `hd`
    subject: str = field(default_factory=lambda: secrets.token_hex(12))
    github_id: int = field(default_factory=lambda: secrets.randbelow(10**8) + 1)


@dataclass(frozen=True)
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    account: Account
    shape: Shape
    issuer: str


def s256(verifier: str) -> str:
    """RFC 7636 S256 code challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class OidcStandin:
    """State of the provider (keys, clients, codes, tokens) and its ASGI app."""

    def __init__(self, account: Account | None = None, port: int = 0) -> None:
        self.account = account or Account(email="test.user@example.com")
        self.directory = str(uuid.uuid4())  # the Entra tenant the default account lives in
        self.kid = secrets.token_hex(8)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._rogue_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._clients: dict[str, str] = {}
        self._accounts: dict[str, Account] = {self.account.email: self.account}
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, Account] = {}
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._sock = bind_loopback(port)
        self.url = base_url(self._sock)
        self.app = self._build_app()

    # -- control (used by tests and the local run) -------------------------------------------
    def register_client(
        self, client_id: str | None = None, secret: str | None = None
    ) -> tuple[str, str]:
        """Register an OAuth client; generated credentials when none are given."""
        client = (
            client_id or f"client-{secrets.token_hex(6)}",
            secret or secrets.token_urlsafe(24),
        )
        self._clients[client[0]] = client[1]
        return client

    def inject_fault(self, fault: Fault) -> None:
        """Make the next ID token issued carry `fault`."""
        self._faults.append(fault)

    def add_account(self, account: Account) -> Account:
        """Make `account` selectable with `login_hint`."""
        self._accounts[account.email] = account
        return account

    def issuer(self, shape: Shape, directory: str | None = None) -> str:
        """The issuer identifier of a shape (Microsoft: per directory, like Entra)."""
        if shape is Shape.MICROSOFT:
            return f"{self.url}/microsoft/{directory or self.directory}/v2.0"
        return f"{self.url}/{shape.value}"

    def start(self) -> RunningServer:
        """Serve on the loopback port bound at construction."""
        return serve_in_thread(self.app, self._sock)

    # -- protocol ----------------------------------------------------------------------------
    def _discovery(self, shape: Shape, tenant: str = "common") -> dict[str, Any]:
        if shape is Shape.MICROSOFT:
            root = f"{self.url}/microsoft/{tenant}"
            issuer = f"{self.url}/microsoft/{{tenantid}}/v2.0" if tenant in MULTI_TENANT else None
            endpoints = {
                "issuer": issuer or self.issuer(shape, tenant),
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "userinfo_endpoint": f"{self.url}/microsoft/oidc/userinfo",
                "jwks_uri": f"{root}/discovery/v2.0/keys",
            }
        else:
            root = f"{self.url}/google"
            endpoints = {
                "issuer": self.issuer(shape),
                "authorization_endpoint": f"{root}/o/oauth2/v2/auth",
                "token_endpoint": f"{root}/token",
                "userinfo_endpoint": f"{root}/v1/userinfo",
                "jwks_uri": f"{root}/oauth2/v3/certs",
            }
        return endpoints | {
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        }

    def _jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [jwk | {"kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def _authorize(self, request: Request, shape: Shape, issuer: str) -> Response:
        q = request.query_params
        client_id, redirect_uri = q.get("client_id", ""), q.get("redirect_uri", "")
        if client_id not in self._clients or not redirect_uri:
            return PlainTextResponse("invalid_client or missing redirect_uri", status_code=400)
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256":
            return _redirect_error(redirect_uri, q.get("state"), "invalid_request")
        hint = q.get("login_hint")
        account = self._accounts.setdefault(hint, Account(email=hint)) if hint else self.account
        code = secrets.token_urlsafe(24)
        self._grants[code] = _Grant(
            client_id=client_id,
            redirect_uri=redirect_uri,
            challenge=q.get("code_challenge", ""),
            nonce=q.get("nonce"),
            account=account,
            shape=shape,
            issuer=issuer,
        )
        params = {"code": code} | ({"state": q["state"]} if "state" in q else {})
        return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)

    async def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        client_id, secret = _client_credentials(request, form)
        grant = self._grants.pop(form.get("code", ""), None)
        error = _grant_error(grant, form, client_id, secret, self._clients)
        github = grant is not None and grant.shape is Shape.GITHUB
        if error or grant is None:
            # GitHub answers errors with 200 and an `error` field; OIDC providers with 400.
            return JSONResponse({"error": error}, status_code=200 if github else 400)
        access_token = secrets.token_urlsafe(24)
        self._tokens[access_token] = grant.account
        if github:
            body = {"access_token": access_token, "token_type": "bearer", "scope": "user:email"}
            if "application/json" in request.headers.get("accept", ""):
                return JSONResponse(body)
            return Response(urlencode(body), media_type="application/x-www-form-urlencoded")
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "scope": "openid email profile",
                "id_token": self._id_token(grant),
            }
        )

    def _id_token(self, grant: _Grant) -> str:
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        now = int(time.time()) - (2 * TOKEN_LIFETIME if fault is Fault.EXPIRED else 0)
        claims: dict[str, Any] = {
            "iss": grant.issuer + ("/evil" if fault is Fault.WRONG_ISSUER else ""),
            "aud": "another-client" if fault is Fault.WRONG_AUDIENCE else grant.client_id,
            "sub": grant.account.subject,
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
            "nonce": "not-the-nonce" if fault is Fault.WRONG_NONCE else grant.nonce,
        } | self._profile(grant.account, grant.shape, grant.issuer)
        key, kid = self._key, self.kid
        if fault in (Fault.BAD_SIGNATURE, Fault.UNKNOWN_KID):
            key = self._rogue_key
            kid = "unknown-kid" if fault is Fault.UNKNOWN_KID else self.kid
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    def _profile(self, account: Account, shape: Shape, issuer: str) -> dict[str, Any]:
        """Identity claims as each provider names them (ID token and userinfo)."""
        claims: dict[str, Any] = {"sub": account.subject, "email": account.email}
        claims["name"] = account.name
        if shape is Shape.MICROSOFT:
            tid = issuer.rstrip("/").split("/")[-2]
            claims |= {"tid": tid, "oid": account.subject, "preferred_username": account.email}
            claims |= {"ver": "2.0", "xms_edov": account.email_verified}
        else:
            claims |= {"email_verified": account.email_verified}
            if account.hosted_domain:
                claims["hd"] = account.hosted_domain
        return claims

    def _bearer_account(self, request: Request) -> Account | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        return self._tokens.get(token)

    def _userinfo(self, request: Request, shape: Shape) -> Response:
        account = self._bearer_account(request)
        if account is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(self._profile(account, shape, self.issuer(shape)))

    def _github_user(self, request: Request, emails: bool) -> Response:
        account = self._bearer_account(request)
        if account is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        if emails:
            entry = {"email": account.email, "primary": True, "visibility": None}
            return JSONResponse([entry | {"verified": account.email_verified}])
        login = account.email.split("@")[0]
        user = {"id": account.github_id, "login": login, "name": account.name, "email": None}
        return JSONResponse(user)

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="OIDC stand-in", openapi_url=None)

        @app.get("/google/.well-known/openid-configuration")
        def google_discovery() -> dict[str, Any]:
            return self._discovery(Shape.GOOGLE)

        @app.get("/microsoft/{tenant}/v2.0/.well-known/openid-configuration")
        def microsoft_discovery(tenant: str) -> dict[str, Any]:
            return self._discovery(Shape.MICROSOFT, tenant)

        @app.get("/google/oauth2/v3/certs")
        @app.get("/microsoft/{tenant}/discovery/v2.0/keys")
        def jwks() -> dict[str, Any]:
            return self._jwks()

        @app.get("/google/o/oauth2/v2/auth")
        def google_authorize(request: Request) -> Response:
            return self._authorize(request, Shape.GOOGLE, self.issuer(Shape.GOOGLE))

        @app.get("/microsoft/{tenant}/oauth2/v2.0/authorize")
        def microsoft_authorize(request: Request, tenant: str) -> Response:
            directory = None if tenant in MULTI_TENANT else tenant
            return self._authorize(
                request, Shape.MICROSOFT, self.issuer(Shape.MICROSOFT, directory)
            )

        @app.get("/github/login/oauth/authorize")
        def github_authorize(request: Request) -> Response:
            return self._authorize(request, Shape.GITHUB, self.issuer(Shape.GITHUB))

        for path in (
            "/google/token",
            "/microsoft/{tenant}/oauth2/v2.0/token",
            "/github/login/oauth/access_token",
        ):
            app.add_api_route(path, self._token, methods=["POST"])

        @app.get("/google/v1/userinfo")
        def google_userinfo(request: Request) -> Response:
            return self._userinfo(request, Shape.GOOGLE)

        @app.get("/microsoft/oidc/userinfo")
        def microsoft_userinfo(request: Request) -> Response:
            return self._userinfo(request, Shape.MICROSOFT)

        @app.get("/github/api/user")
        def github_user(request: Request) -> Response:
            return self._github_user(request, emails=False)

        @app.get("/github/api/user/emails")
        def github_emails(request: Request) -> Response:
            return self._github_user(request, emails=True)

        return app


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    """client_secret_basic if an Authorization header is present, else client_secret_post."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        client_id, _, secret = base64.b64decode(value).decode().partition(":")
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret", "")


def _grant_error(
    grant: _Grant | None, form: dict[str, str], client_id: str, secret: str, clients: dict[str, str]
) -> str | None:
    """The RFC 6749 error code for a token request, or None when it is valid."""
    if clients.get(client_id) is None or not secrets.compare_digest(clients[client_id], secret):
        return "invalid_client"
    if form.get("grant_type") != "authorization_code" or grant is None:
        return "invalid_grant"
    if grant.client_id != client_id or grant.redirect_uri != form.get("redirect_uri"):
        return "invalid_grant"
    if not secrets.compare_digest(s256(form.get("code_verifier", "")), grant.challenge):
        return "invalid_grant"
    return None


def _redirect_error(redirect_uri: str, state: str | None, error: str) -> Response:
    params = {"error": error} | ({"state": state} if state else {})
    return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)


def app_env(standin: OidcStandin, client_id: str, secret: str) -> dict[str, str]:
    """The app's sign-in settings (environment) for all three shapes of this stand-in."""
    env = {"CLOOP_SIGNIN_GOOGLE_ISSUER": standin.issuer(Shape.GOOGLE)}
    env["CLOOP_SIGNIN_MICROSOFT_ISSUER"] = f"{standin.url}/microsoft/common/v2.0"
    env["CLOOP_SIGNIN_GITHUB_AUTHORIZE_URL"] = f"{standin.url}/github/login/oauth/authorize"
    env["CLOOP_SIGNIN_GITHUB_TOKEN_URL"] = f"{standin.url}/github/login/oauth/access_token"
    env["CLOOP_SIGNIN_GITHUB_API_URL"] = f"{standin.url}/github/api"
    env["CLOOP_SIGNIN_ENTRA_ISSUER_TEMPLATE"] = f"{standin.url}/microsoft/{{directory}}/v2.0"
    for shape in Shape:
        env[f"CLOOP_SIGNIN_{shape.name}_CLIENT_ID"] = client_id
        env[f"CLOOP_SIGNIN_{shape.name}_CLIENT_SECRET"] = secret
    return env


def main() -> None:
    """Run the stand-in in the foreground; print the app's settings for it as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="loopback port (0: any free one)")
    parser.add_argument("--client", default="", help="CLIENT_ID:SECRET (default: generated)")
    parser.add_argument("--email", default="test.user@example.com", help="the signed-in account")
    args = parser.parse_args()
    standin = OidcStandin(Account(email=args.email), port=args.port)
    client_id, _, secret = args.client.partition(":")
    client_id, secret = standin.register_client(client_id or None, secret or None)
    env = app_env(standin, client_id, secret)
    print(json.dumps({"url": standin.url, "directory": standin.directory, "env": env}), flush=True)
    serve_forever(standin.app, standin._sock)


if __name__ == "__main__":
    main()
