"""Access tokens: short-lived ES256 JWTs with a ``kid`` from a rotatable key set.

The newest key signs; every key in the set verifies, so rotation is: add a key, wait one
access-token lifetime, remove the old one. Keys are never in the repository: they are read
from ``CLOOP_SIGNING_KEYS_DIR`` or generated in memory at start.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from pydantic import BaseModel

from app.audit.service import FAILURE, SUCCESS, record_auth_event
from app.core import session_repository as repo
from app.core.db import Database, TenantConnection
from app.core.roles import Role
from app.core.settings import Settings
from app.core.tenancy import TenantId
from app.privacy.checks import refusal_message

ALGORITHM = "ES256"
_VERIFIED_CACHE_SIZE = 10_000


class InvalidTokenError(Exception):
    """The token is malformed, expired, signed by an unknown key or tampered with."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.of(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def of(cls, private_key: ec.EllipticCurvePrivateKey) -> SigningKey:
        return cls(thumbprint(private_key.public_key()), private_key)

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint: a ``kid`` derived from the key, so it cannot drift from it."""
    jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class KeySet:
    """The signing key (last) and every key still accepted for verification."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        if not keys:
            raise ValueError("a key set needs at least one key")
        self.signing = keys[-1]
        self._by_kid = {key.kid: key for key in keys}

    @classmethod
    def generate(cls) -> KeySet:
        return cls([SigningKey.generate()])

    @classmethod
    def from_dir(cls, directory: Path) -> KeySet:
        """Every ``*.pem`` in name order: name files so that the newest sorts last."""
        keys = []
        for path in sorted(directory.glob("*.pem")):
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{path}: not an EC private key")
            keys.append(SigningKey.of(key))
        if not keys:
            raise ValueError(f"{directory}: no *.pem signing key")
        return cls(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeySet:
        return (
            cls.from_dir(settings.signing_keys_dir) if settings.signing_keys_dir else cls.generate()
        )

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self._by_kid.values()]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self.signing.private_key, algorithm=ALGORITHM, headers={"kid": self.signing.kid}
        )

    def verify(self, token: str, issuer: str) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._by_kid.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise InvalidTokenError("unknown signing key")
            return jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=[ALGORITHM],
                issuer=issuer,
                options={"require": ["exp", "iat", "sub", "jti", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from exc


def write_new_key(directory: Path) -> Path:
    """Add a fresh signing key to ``directory`` (it signs from the next start on)."""
    key = SigningKey.generate()
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{stamp}-{key.kid[:12]}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(key.pem())
    return path


@dataclass(frozen=True)
class Principal:
    """Who is calling: a verified user acting in one tenant with one role."""

    user_id: uuid.UUID
    tenant_id: TenantId
    role: Role


class TokenIssuer:
    """Mints and verifies access tokens with one key set and one issuer name."""

    def __init__(
        self, keys: KeySet, issuer: str, ttl_seconds: int, refresh_ttl_seconds: int
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        self.refresh_ttl_seconds = refresh_ttl_seconds
        # Verified tokens until they expire: a client sends the same token many times, and
        # verifying one costs more than the rest of a simple request.
        self._verified: dict[str, tuple[Principal, float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, keys: KeySet | None = None) -> TokenIssuer:
        return cls(
            keys or KeySet.from_settings(settings),
            settings.jwt_issuer,
            settings.access_token_ttl_seconds,
            settings.refresh_token_ttl_seconds,
        )

    def issue(self, user_id: uuid.UUID, tenant_id: TenantId, role: Role) -> str:
        now = int(time.time())
        return self.keys.sign(
            {
                "iss": self.issuer,
                "sub": str(user_id),
                "tid": str(tenant_id),
                "role": role.value,
                "iat": now,
                "exp": now + self.ttl_seconds,
                "jti": uuid.uuid4().hex,
            }
        )

    def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        principal, expires = self._verify(token)
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        claims = self.keys.verify(token, self.issuer)
        try:
            principal = Principal(
                uuid.UUID(claims["sub"]), TenantId(uuid.UUID(claims["tid"])), Role(claims["role"])
            )
            return principal, float(claims["exp"])
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidTokenError("malformed claims") from exc


_installed: TokenIssuer | None = None


def install_issuer(issuer: TokenIssuer) -> None:
    """Make ``issuer`` the process's token issuer (done by the app at start)."""
    global _installed  # noqa: PLW0603 - one key set per process, like the settings
    _installed = issuer


def installed_issuer() -> TokenIssuer:
    if _installed is None:
        raise RuntimeError("no token issuer installed: create the app first")
    return _installed


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme's name
    expires_in: int


class SessionRefusedError(Exception):
    """A refresh or sign-in that must not yield tokens; the message is safe to show."""


def token_hash(token: str) -> bytes:
    """What is stored of an opaque token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).digest()


def new_scoped_token(tenant_id: TenantId) -> str:
    """An opaque token ``<tenant hex>.<secret>`` (refresh tokens, invitations)."""
    return f"{tenant_id.hex}.{secrets.token_urlsafe(32)}"


def tenant_of_token(token: str) -> TenantId | None:
    """The tenant in which to look an opaque token up, or None if it is malformed.

    The prefix is not trusted: the lookup inside that tenant matches the hash of the whole
    token, so a forged prefix finds nothing.
    """
    prefix, _, secret = token.partition(".")
    if len(prefix) != 32 or not secret:
        return None
    try:
        return TenantId(uuid.UUID(hex=prefix))
    except ValueError:
        return None


async def _new_refresh_token(
    conn: TenantConnection,
    tenant_id: TenantId,
    user_id: uuid.UUID,
    family_id: uuid.UUID,
    ttl_seconds: int,
) -> str:
    token = new_scoped_token(tenant_id)
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
    await repo.insert_refresh_token(
        conn,
        tenant_id,
        user_id=user_id,
        family_id=family_id,
        token_hash=token_hash(token),
        expires_at=expires_at,
    )
    return token


def _pair(
    issuer: TokenIssuer, user_id: uuid.UUID, tenant_id: TenantId, role: Role, refresh: str
) -> TokenPair:
    return TokenPair(
        access_token=issuer.issue(user_id, tenant_id, role),
        refresh_token=refresh,
        expires_in=issuer.ttl_seconds,
    )


async def start_session(
    db: Database, user_id: uuid.UUID, tenant_id: TenantId, *, issuer: TokenIssuer | None = None
) -> TokenPair:
    """Tokens for a user whose identity the caller has verified; refuses a non-member."""
    issuer = issuer or installed_issuer()
    async with repo.member_transaction(db, tenant_id, user_id) as (conn, role, erasure):
        if role is None:
            raise SessionRefusedError("this account is not a member of that tenant")
        refusal = refusal_message(erasure)
        if refusal:  # erasure pending (GDPR-17)
            raise SessionRefusedError(refusal)
        refresh = await _new_refresh_token(
            conn, tenant_id, user_id, uuid.uuid4(), issuer.refresh_ttl_seconds
        )
    return _pair(issuer, user_id, tenant_id, Role(role), refresh)


async def rotate_refresh_token(
    db: Database, refresh_token: str, *, ip: str | None, issuer: TokenIssuer | None = None
) -> TokenPair:
    """Exchange a refresh token for a new pair, once. A second use revokes the whole family."""
    issuer = issuer or installed_issuer()
    tenant_id = tenant_of_token(refresh_token)
    if tenant_id is None:
        await record_auth_event(
            db,
            event="token.refresh",
            actor=None,
            tenant_id=None,
            ip=ip,
            outcome=FAILURE,
            detail={"reason": "malformed token"},
        )
        raise SessionRefusedError("invalid refresh token")
    async with db.tenant(tenant_id) as conn:
        pair, reason, actor = await _rotate(conn, tenant_id, refresh_token, issuer)
        await record_auth_event(
            conn,
            event="token.refresh",
            actor=actor,
            tenant_id=tenant_id if actor else None,
            ip=ip,
            outcome=SUCCESS if pair else FAILURE,
            detail={"reason": reason} if reason else {},
        )
    if pair is None:
        raise SessionRefusedError("invalid refresh token")
    return pair


async def _rotate(
    conn: TenantConnection, tenant_id: TenantId, token: str, issuer: TokenIssuer
) -> tuple[TokenPair | None, str | None, str | None]:
    """(new pair or None, reason of a refusal, actor) inside the tenant's transaction."""
    row = await repo.lock_refresh_token(conn, tenant_id, token_hash(token))
    if row is None:
        return None, "unknown token", None
    user_id: uuid.UUID = row["user_id"]
    actor = str(user_id)
    if row["revoked_at"] is not None or row["expired"]:
        return None, "revoked or expired token", actor
    if row["used_at"] is not None:
        await repo.revoke_family(conn, tenant_id, row["family_id"])
        return None, "reuse detected: session family revoked", actor
    role = await repo.membership_role(conn, tenant_id, user_id)
    if role is None:
        await repo.revoke_family(conn, tenant_id, row["family_id"])
        return None, "no longer a member", actor
    await repo.mark_used(conn, tenant_id, row["id"])
    refresh = await _new_refresh_token(
        conn, tenant_id, user_id, row["family_id"], issuer.refresh_ttl_seconds
    )
    return _pair(issuer, user_id, tenant_id, Role(role), refresh), None, actor


async def sign_out(db: Database, refresh_token: str, *, ip: str | None) -> None:
    """End the session the refresh token belongs to (its whole family)."""
    tenant_id = tenant_of_token(refresh_token)
    row = None
    if tenant_id is not None:
        async with db.tenant(tenant_id) as conn:
            row = await repo.lock_refresh_token(conn, tenant_id, token_hash(refresh_token))
            if row is not None:
                await repo.revoke_family(conn, tenant_id, row["family_id"])
                await record_auth_event(
                    conn,
                    event="sign_out",
                    actor=str(row["user_id"]),
                    tenant_id=tenant_id,
                    ip=ip,
                    outcome=SUCCESS,
                )
    if row is None:
        await record_auth_event(
            db,
            event="sign_out",
            actor=None,
            tenant_id=None,
            ip=ip,
            outcome=FAILURE,
            detail={"reason": "unknown token"},
        )
        raise SessionRefusedError("invalid refresh token")
