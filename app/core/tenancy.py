"""Tenant scope carried in types.

``TenantId`` is produced only by the auth layer (a verified access token, a verified refresh or
invitation token, a widget token lookup) or by ``new_tenant_id`` when a tenant is created.
Repository functions require it, so forgetting the scope is a type error rather than a leak.
"""

from __future__ import annotations

import uuid
from typing import NewType

TenantId = NewType("TenantId", uuid.UUID)


def new_tenant_id() -> TenantId:
    """The id of a tenant about to be created."""
    return TenantId(uuid.uuid4())
