"""The FastAPI application: ``uvicorn --factory app.core.main:create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from app.audit.endpoints import router as audit_router
from app.chat.routers import KB_CHAT_ROUTERS
from app.core.db import Database
from app.core.logging import configure_logging
from app.core.middleware import NoCookiesMiddleware
from app.core.migrations import apply_migrations
from app.core.problems import UnexpectedErrorMiddleware, install_problem_handlers
from app.core.security import KeySet, TokenIssuer, install_issuer
from app.core.session_endpoints import router as session_router
from app.core.settings import Settings, get_settings
from app.privacy.endpoints import router as privacy_router
from app.signin.endpoints import router as signin_router
from app.sites.endpoints import router as sites_router
from app.tenants.endpoints import router as tenants_router
from app.users.endpoints import router as users_router

# Every domain's router, one line each: add yours here.
ROUTERS: list[APIRouter] = [
    session_router,
    tenants_router,
    users_router,
    sites_router,
    audit_router,
    signin_router,
    privacy_router,
    *KB_CHAT_ROUTERS,
]

health_router = APIRouter()


@health_router.get("/healthz", include_in_schema=False)
async def healthz() -> JSONResponse:
    """Liveness for the load balancer and the deploy's check before traffic."""
    return JSONResponse({"status": "ok"})


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    keys: KeySet | None = None,
) -> FastAPI:
    """Build the app; tests pass their own database and keys, production reads settings."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    issuer = TokenIssuer.from_settings(settings, keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await apply_migrations(settings.owner_database_url)
        db = database or Database.from_settings(settings)
        if database is None:
            await db.open()
        app.state.db = db
        install_issuer(issuer)
        try:
            yield
        finally:
            if database is None:
                await db.close()

    app = FastAPI(title="Cloop", version="1", lifespan=lifespan, openapi_url="/api/v1/openapi.json")
    app.state.settings = settings
    app.state.issuer = issuer
    install_problem_handlers(app)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(NoCookiesMiddleware)
    app.include_router(health_router)
    for router in ROUTERS:
        app.include_router(router)
    return app
