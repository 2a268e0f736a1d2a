"""OAuth 2.0 / OpenID Connect relying party: authorization URL, code exchange, ID token checks.

Talks to providers over httpx only; discovery documents and JWKS are cached per URL. An ID
token is accepted only if its signature verifies with a key the issuer publishes (asymmetric
algorithms only), and its issuer, audience, expiry and nonce match this very flow.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

ALLOWED_ALGORITHMS = frozenset({"RS256", "ES256"})
DOCUMENT_TTL = 3600.0
# A token naming an unknown kid triggers a JWKS refetch at most this often (key rotation).
JWKS_REFETCH_AFTER = 60.0


class SigninError(Exception):
    """A refused sign-in: `reason` is logged and audited, the message is shown to the user."""

    def __init__(self, reason: str, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class OidcProvider:
    """An OpenID Connect issuer (Google, Microsoft, a tenant's Entra ID or Workspace)."""

    key: str  # identities.provider: "google", "microsoft" or "sso:<tenant id>"
    client_id: str
    client_secret: str
    issuer: str  # the discovery document is at {issuer}/.well-known/openid-configuration
    hosted_domain: str | None = None  # Google Workspace: the `hd` claim must equal it


@dataclass(frozen=True)
class OAuthProvider:
    """A plain OAuth 2.0 provider with a user API instead of ID tokens (GitHub)."""

    key: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    api_url: str


Provider = OidcProvider | OAuthProvider


@dataclass(frozen=True)
class ExternalIdentity:
    """Who the provider says signed in."""

    provider: str
    subject: str
    email: str
    email_verified: bool
    name: str


@dataclass(frozen=True)
class FlowSecrets:
    """The per-flow secrets: state (CSRF), nonce (ID token replay), PKCE verifier."""

    state: str
    nonce: str
    verifier: str

    @classmethod
    def new(cls) -> FlowSecrets:
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        """RFC 7636 S256 challenge of the verifier."""
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class _Cache:
    """JSON documents by URL with their fetch time."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    async def get(self, http: httpx.AsyncClient, url: str, max_age: float) -> dict[str, Any]:
        fetched = self._entries.get(url)
        if fetched and time.monotonic() - fetched[0] < max_age:
            return fetched[1]
        document = await _get_json(http, url)
        self._entries[url] = (time.monotonic(), document)
        return document


_documents = _Cache()


async def _get_json(http: httpx.AsyncClient, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = await http.get(url, **kwargs)
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SigninError(
            "provider_unavailable", "The sign-in provider did not answer.", 502
        ) from exc
    if not isinstance(document, dict):
        raise SigninError("provider_unavailable", "The sign-in provider answered nonsense.", 502)
    return document


async def discover(http: httpx.AsyncClient, issuer: str) -> dict[str, Any]:
    """The provider's OpenID configuration (cached for an hour)."""
    return await _documents.get(
        http, f"{issuer.rstrip('/')}/.well-known/openid-configuration", DOCUMENT_TTL
    )


async def authorization_url(
    http: httpx.AsyncClient, provider: Provider, redirect_uri: str, flow: FlowSecrets
) -> str:
    """Where to send the browser: authorization code request with state, nonce and PKCE."""
    params = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "state": flow.state,
        "code_challenge": flow.challenge,
        "code_challenge_method": "S256",
    }
    if isinstance(provider, OAuthProvider):
        return f"{provider.authorize_url}?{urlencode(params | {'scope': 'read:user user:email'})}"
    endpoint = (await discover(http, provider.issuer))["authorization_endpoint"]
    params |= {"scope": "openid email profile", "nonce": flow.nonce}
    if provider.hosted_domain:
        params["hd"] = provider.hosted_domain
    return f"{endpoint}?{urlencode(params)}"


async def complete(
    http: httpx.AsyncClient,
    provider: Provider,
    *,
    code: str,
    redirect_uri: str,
    flow: FlowSecrets,
    leeway: int,
) -> ExternalIdentity:
    """Exchange the code (with the PKCE verifier) and establish who signed in."""
    if isinstance(provider, OAuthProvider):
        tokens = await _exchange(
            http, provider.token_url, provider, code=code, redirect_uri=redirect_uri, flow=flow
        )
        return await _github_identity(http, provider, tokens["access_token"])
    metadata = await discover(http, provider.issuer)
    tokens = await _exchange(
        http, metadata["token_endpoint"], provider, code=code, redirect_uri=redirect_uri, flow=flow
    )
    if not isinstance(tokens.get("id_token"), str):
        raise SigninError("no_id_token", "The provider returned no ID token.")
    claims = await verify_id_token(http, metadata, provider, tokens["id_token"], leeway)
    _check_claims(claims, provider, flow.nonce)
    return _oidc_identity(provider, claims)


async def _exchange(
    http: httpx.AsyncClient,
    token_url: str,
    provider: Provider,
    *,
    code: str,
    redirect_uri: str,
    flow: FlowSecrets,
) -> dict[str, Any]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        "code_verifier": flow.verifier,
    }
    try:
        response = await http.post(token_url, data=form, headers={"Accept": "application/json"})
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SigninError(
            "provider_unavailable", "The sign-in provider did not answer.", 502
        ) from exc
    # GitHub reports errors with status 200 and an `error` field.
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        error = body.get("error", response.status_code) if isinstance(body, dict) else "?"
        raise SigninError(
            "code_rejected", f"The provider refused the authorization code ({error})."
        )
    return body


async def verify_id_token(
    http: httpx.AsyncClient,
    metadata: dict[str, Any],
    provider: OidcProvider,
    token: str,
    leeway: int,
) -> dict[str, Any]:
    """Signature (issuer's JWKS), audience, expiry and issuer of an ID token."""
    key = await _signing_key(http, metadata["jwks_uri"], token)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            audience=provider.client_id,
            leeway=leeway,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise SigninError("token_expired", "The ID token has expired.") from exc
    except jwt.InvalidAudienceError as exc:
        raise SigninError("wrong_audience", "The ID token was issued to another client.") from exc
    except jwt.InvalidSignatureError as exc:
        raise SigninError("bad_signature", "The ID token signature does not verify.") from exc
    except jwt.PyJWTError as exc:
        raise SigninError("invalid_id_token", f"The ID token is invalid: {exc}.") from exc
    # Entra's multi-tenant discovery names the issuer per directory: .../{tenantid}/v2.0
    expected = str(metadata["issuer"]).replace("{tenantid}", str(claims.get("tid", "")))
    if claims["iss"] != expected:
        raise SigninError("wrong_issuer", "The ID token comes from another issuer.")
    return claims


async def _signing_key(http: httpx.AsyncClient, jwks_uri: str, token: str) -> jwt.PyJWK:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise SigninError("invalid_id_token", "The ID token is not a JWT.") from exc
    for max_age in (DOCUMENT_TTL, JWKS_REFETCH_AFTER):
        jwks = await _documents.get(http, jwks_uri, max_age)
        for entry in jwks.get("keys", []):
            if isinstance(entry, dict) and entry.get("kid") == kid:
                try:
                    key = jwt.PyJWK(entry)
                except jwt.PyJWTError:
                    break
                if key.algorithm_name in ALLOWED_ALGORITHMS:
                    return key
    raise SigninError(
        "unknown_key", "The ID token is signed with a key the issuer does not publish."
    )


def _check_claims(claims: dict[str, Any], provider: OidcProvider, nonce: str) -> None:
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != provider.client_id:
        raise SigninError("wrong_audience", "The ID token was issued to another client.")
    if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise SigninError("wrong_nonce", "The ID token belongs to another sign-in attempt.")
    if provider.hosted_domain and claims.get("hd") != provider.hosted_domain:
        raise SigninError("wrong_domain", "This account is not part of the organisation's domain.")


def _oidc_identity(provider: OidcProvider, claims: dict[str, Any]) -> ExternalIdentity:
    email = claims.get("email") or claims.get("preferred_username")
    if not isinstance(email, str) or "@" not in email:
        raise SigninError("no_email", "The provider did not share an e-mail address.")
    # Google: email_verified; Entra: xms_edov (the e-mail's domain is verified by its owner).
    verified = claims.get("email_verified") is True or claims.get("xms_edov") is True
    name = claims.get("name")
    return ExternalIdentity(
        provider.key, str(claims["sub"]), email, verified, name if isinstance(name, str) else ""
    )


async def _github_identity(
    http: httpx.AsyncClient, provider: OAuthProvider, access_token: str
) -> ExternalIdentity:
    """GitHub issues no ID token: the user and e-mail APIs say who signed in."""
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/vnd.github+json"}
    api = provider.api_url.rstrip("/")
    user = await _get_json(http, f"{api}/user", headers=headers)
    response = await http.get(f"{api}/user/emails", headers=headers)
    emails = response.json() if response.status_code == 200 else []
    primary = next(
        (e for e in emails if isinstance(e, dict) and e.get("primary") and e.get("verified")), None
    )
    if primary is None or "id" not in user:
        raise SigninError("no_email", "GitHub did not share a verified primary e-mail address.")
    name = user.get("name") or user.get("login") or ""
    return ExternalIdentity(provider.key, str(user["id"]), str(primary["email"]), True, str(name))
