"""Roles and the permission table: the one place that says who may do what in a tenant."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class Permission(StrEnum):
    TENANT_READ = "tenant:read"
    TENANT_UPDATE = "tenant:update"
    TENANT_DELETE = "tenant:delete"
    MEMBERS_READ = "members:read"
    MEMBERS_MANAGE = "members:manage"
    OWNERS_MANAGE = "owners:manage"
    SITES_READ = "sites:read"
    SITES_WRITE = "sites:write"
    AUDIT_READ = "audit:read"
    SSO_MANAGE = "sso:manage"
    KNOWLEDGE_READ = "knowledge:read"
    KNOWLEDGE_WRITE = "knowledge:write"
    CONVERSATIONS_READ = "conversations:read"
    LEADS_READ = "leads:read"
    ANALYTICS_READ = "analytics:read"
    DATA_EXPORT = "data:export"
    DATA_ERASE = "data:erase"


_MEMBER = frozenset(
    {
        Permission.TENANT_READ,
        Permission.MEMBERS_READ,
        Permission.SITES_READ,
        Permission.KNOWLEDGE_READ,
        Permission.KNOWLEDGE_WRITE,
        Permission.CONVERSATIONS_READ,
        Permission.LEADS_READ,
        Permission.ANALYTICS_READ,
    }
)
_ADMIN = _MEMBER | {
    Permission.TENANT_UPDATE,
    Permission.MEMBERS_MANAGE,
    Permission.SITES_WRITE,
    Permission.AUDIT_READ,
    Permission.SSO_MANAGE,
    Permission.DATA_EXPORT,
}
_OWNER = _ADMIN | {Permission.OWNERS_MANAGE, Permission.TENANT_DELETE, Permission.DATA_ERASE}

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: _OWNER,
    Role.ADMIN: frozenset(_ADMIN),
    Role.MEMBER: _MEMBER,
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS[role]
