"""HTTP for sessions: refresh, sign-out and the public keys that verify access tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from app.core.deps import ClientIp, Db, Issuer
from app.core.problems import ApiError
from app.core.security import SessionRefusedError, TokenPair, rotate_refresh_token, sign_out

router = APIRouter(tags=["sessions"])


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=512)


@router.post("/api/v1/auth/refresh")
async def refresh(body: RefreshRequest, db: Db, issuer: Issuer, ip: ClientIp) -> TokenPair:
    """A new token pair for a refresh token, which is then spent (rotation)."""
    try:
        return await rotate_refresh_token(db, body.refresh_token, ip=ip, issuer=issuer)
    except SessionRefusedError as exc:
        raise ApiError(401, f"{exc}; sign in again.") from None


@router.post("/api/v1/auth/signout", status_code=204)
async def signout(body: RefreshRequest, db: Db, ip: ClientIp) -> Response:
    """End the session: its refresh tokens stop working; access tokens expire within minutes."""
    try:
        await sign_out(db, body.refresh_token, ip=ip)
    except SessionRefusedError as exc:
        raise ApiError(401, str(exc)) from None
    return Response(status_code=204)


@router.get("/.well-known/jwks.json")
async def jwks(issuer: Issuer) -> dict[str, Any]:
    """Public keys of the access tokens (RFC 7517), with ``kid``."""
    return issuer.keys.jwks()
