"""SQL of sign-in: identities, pending flows, SSO configurations, seen SAML assertions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from app.core.db import Connection, TenantConnection
from app.core.tenancy import TenantId


async def find_identity(conn: Connection, provider: str, subject: str) -> uuid.UUID | None:
    """The user linked to an account at a provider, if any."""
    cur = await conn.execute(
        "UPDATE identities SET last_signin_at = now() WHERE provider = %s AND subject = %s"
        " RETURNING user_id",
        [provider, subject],
    )
    row = await cur.fetchone()
    return None if row is None else row["user_id"]


async def link_identity(
    conn: Connection, user_id: uuid.UUID, provider: str, subject: str, email: str
) -> None:
    await conn.execute(
        "INSERT INTO identities (user_id, provider, subject, email) VALUES (%s, %s, %s, %s)",
        [user_id, provider, subject, email],
    )


async def insert_flow(
    conn: Connection,
    tenant_id: TenantId | None,
    *,
    state_hash: bytes,
    provider: str,
    nonce: str | None,
    code_verifier: str | None,
    saml_request_id: str | None,
    expires_at: datetime,
) -> None:
    """A pending flow; with a tenant, `conn` must be scoped to it (RLS checks the insert)."""
    await conn.execute(
        "INSERT INTO signin_flows"
        " (id, tenant_id, provider, nonce, code_verifier, saml_request_id, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [state_hash, tenant_id, provider, nonce, code_verifier, saml_request_id, expires_at],
    )


async def take_flow(conn: Connection, state_hash: bytes) -> dict[str, Any] | None:
    """Delete and return the flow of a state: a second take finds nothing."""
    cur = await conn.execute(
        "SELECT tenant_id, provider, nonce, code_verifier, saml_request_id,"
        " expires_at < now() AS expired FROM take_signin_flow(%s)",
        [state_hash],
    )
    return await cur.fetchone()


async def get_sso_config(conn: TenantConnection, tenant_id: TenantId) -> dict[str, Any] | None:
    cur = await conn.execute("SELECT * FROM sso_configs WHERE tenant_id = %s", [tenant_id])
    return await cur.fetchone()


SSO_COLUMNS = (
    "protocol",
    "oidc_kind",
    "oidc_directory",
    "oidc_client_id",
    "oidc_client_secret",
    "saml_idp_entity_id",
    "saml_idp_sso_url",
    "saml_idp_certificate",
)


async def put_sso_config(
    conn: TenantConnection, tenant_id: TenantId, values: dict[str, Any]
) -> None:
    """Replace the tenant's SSO configuration (columns of the other protocol become NULL)."""
    await conn.execute(
        """
        INSERT INTO sso_configs (tenant_id, protocol, oidc_kind, oidc_directory, oidc_client_id,
            oidc_client_secret, saml_idp_entity_id, saml_idp_sso_url, saml_idp_certificate)
        VALUES (%(tenant_id)s, %(protocol)s, %(oidc_kind)s, %(oidc_directory)s,
            %(oidc_client_id)s, %(oidc_client_secret)s, %(saml_idp_entity_id)s,
            %(saml_idp_sso_url)s, %(saml_idp_certificate)s)
        ON CONFLICT (tenant_id) DO UPDATE SET
            protocol = EXCLUDED.protocol, oidc_kind = EXCLUDED.oidc_kind,
            oidc_directory = EXCLUDED.oidc_directory, oidc_client_id = EXCLUDED.oidc_client_id,
            oidc_client_secret = EXCLUDED.oidc_client_secret,
            saml_idp_entity_id = EXCLUDED.saml_idp_entity_id,
            saml_idp_sso_url = EXCLUDED.saml_idp_sso_url,
            saml_idp_certificate = EXCLUDED.saml_idp_certificate,
            updated_at = now()
        """,
        {column: values.get(column) for column in SSO_COLUMNS} | {"tenant_id": tenant_id},
    )


async def delete_sso_config(conn: TenantConnection, tenant_id: TenantId) -> bool:
    cur = await conn.execute("DELETE FROM sso_configs WHERE tenant_id = %s", [tenant_id])
    return cur.rowcount > 0


async def remember_assertion(
    conn: TenantConnection, tenant_id: TenantId, assertion_id: str, expires_at: datetime
) -> bool:
    """Record an assertion id; False if it was seen before (a replay)."""
    await conn.execute(
        "DELETE FROM saml_assertion_ids WHERE tenant_id = %s AND expires_at < now()", [tenant_id]
    )
    cur = await conn.execute(
        "INSERT INTO saml_assertion_ids (tenant_id, assertion_id, expires_at) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        [tenant_id, assertion_id, expires_at],
    )
    return cur.rowcount == 1
