"""Fixtures of the app tests: one embedded PostgreSQL per session (per xdist worker), a fresh
migrated database per test (copied from a template), the app on it, and factories for tenants
with a user of each role and for their access tokens.

Async tests run on anyio (asyncio): mark them (``pytestmark = pytest.mark.anyio``).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.core import embedded
from app.core.bootstrap import drop_database
from app.core.db import Database
from app.core.main import create_app
from app.core.migrations import apply_migrations
from app.core.plans import Plan
from app.core.roles import Role
from app.core.security import KeySet, TokenIssuer
from app.core.settings import Settings
from app.core.tenancy import TenantId
from app.tenants import repository as tenants_repository
from app.tenants import service as tenants_service
from app.users.service import ensure_user

TEMPLATE = "cloop_template"
REPO_ROOT = Path(__file__).resolve().parents[2]
CLIENT_IP = "203.0.113.7"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres() -> Iterator[embedded.LocalPostgres]:
    """The session's server, with a migrated template database to copy per test.

    Not under pytest's tmp_path: concurrent pytest runs prune old base temp directories.
    """
    parent = Path(tempfile.mkdtemp(prefix="cloop-pg-"))
    server = embedded.start(parent / "data", delete_on_exit=True)
    try:
        server.prepare(TEMPLATE)
        asyncio.run(apply_migrations(server.owner_url(TEMPLATE)))
        yield server
    finally:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def database_name(postgres: embedded.LocalPostgres) -> Iterator[str]:
    """A fresh database with every migration applied, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres.prepare(name, template=TEMPLATE)
    yield name
    drop_database(postgres.url("postgres"), name)


@pytest.fixture
def settings(postgres: embedded.LocalPostgres, database_name: str) -> Settings:
    return Settings(
        database_url=postgres.app_url(database_name),
        owner_database_url=postgres.owner_url(database_name),
        migrate_on_start=False,
        pool_min_size=1,
        pool_max_size=4,
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_settings(settings)
    await database.open()
    yield database
    await database.close()


@pytest.fixture(scope="session")
def keys() -> KeySet:
    """Generated at run time: no key is ever committed."""
    return KeySet.generate()


@pytest.fixture
def issuer(settings: Settings, keys: KeySet) -> TokenIssuer:
    return TokenIssuer.from_settings(settings, keys)


@pytest.fixture
async def app(settings: Settings, db: Database, keys: KeySet) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database=db, keys=keys)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI; unexpected errors come back as responses, as a real server sends."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(CLIENT_IP, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    role: Role


@dataclass(frozen=True)
class TenantFixture:
    id: TenantId
    name: str
    plan: Plan
    owner: User
    admin: User
    member: User

    def user(self, role: Role) -> User:
        return {Role.OWNER: self.owner, Role.ADMIN: self.admin, Role.MEMBER: self.member}[role]


MakeTenant = Callable[..., Awaitable[TenantFixture]]


@pytest.fixture
def make_tenant(db: Database) -> MakeTenant:
    """``await make_tenant(plan="free")``: a tenant with one Owner, one Admin and one Member."""

    async def make(plan: str = "team", name: str | None = None) -> TenantFixture:
        tag = uuid.uuid4().hex[:8]
        name = name or f"Tenant {tag}"
        users = {}
        async with db.unscoped() as conn:
            for role in Role:
                email = f"{role.value}-{tag}@example.test"
                users[role] = User(
                    await ensure_user(conn, email, f"{role.value} {tag}"), email, role
                )
        tenant_id = await tenants_service.create_tenant(db, name, users[Role.OWNER].id)
        async with db.tenant(tenant_id) as conn:
            for role in (Role.ADMIN, Role.MEMBER):
                await tenants_repository.insert_membership(conn, tenant_id, users[role].id, role)
        await tenants_service.set_plan(db, tenant_id, Plan(plan))
        return TenantFixture(
            tenant_id, name, Plan(plan), users[Role.OWNER], users[Role.ADMIN], users[Role.MEMBER]
        )

    return make


@pytest.fixture
async def tenant(make_tenant: MakeTenant) -> TenantFixture:
    """A Team-plan tenant (every feature on)."""
    return await make_tenant()


@pytest.fixture
async def other_tenant(make_tenant: MakeTenant) -> TenantFixture:
    """A second Team-plan tenant: what the first must never see or change."""
    return await make_tenant()


AuthHeaders = Callable[[User, TenantFixture], dict[str, str]]


@pytest.fixture
def auth_headers(issuer: TokenIssuer) -> AuthHeaders:
    """``auth_headers(tenant.admin, tenant)``: a valid access token for that user there."""

    def headers(user: User, tenant: TenantFixture) -> dict[str, str]:
        return {"Authorization": f"Bearer {issuer.issue(user.id, tenant.id, user.role)}"}

    return headers
