"""The app's route table, read the way the permission matrix needs it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from app.core.deps import FeatureCheck, PermissionCheck, current_principal
from app.core.main import create_app
from app.core.plans import Feature
from app.core.roles import Permission
from app.core.settings import Settings

# Routes anyone may call, each with the reason; every other route needs a bearer token.
PUBLIC_PREFIXES = {
    "/healthz": "liveness probe",
    "/.well-known/jwks.json": "public keys that verify access tokens",
    "/api/v1/auth/refresh": "authenticated by the refresh token in the body",
    "/api/v1/auth/signout": "authenticated by the refresh token in the body",
    "/api/v1/signin/": "sign-in flows: the caller has no token yet",
    "/api/v1/widget/": "widget calls: authenticated by the site's embed token",
}


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    permission: Permission | None
    feature: Feature | None
    authenticated: bool
    has_body: bool
    module: str

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def platform(self) -> bool:
        return self.module.startswith(PLATFORM_MODULES)

    @property
    def public(self) -> bool:
        return any(self.path.startswith(prefix) for prefix in PUBLIC_PREFIXES)


def _calls(dependant: Dependant) -> list[object]:
    found: list[object] = [dependant.call]
    for sub in dependant.dependencies:
        found += _calls(sub)
    return found


def route_table(app: FastAPI) -> list[RouteInfo]:
    table = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        calls = _calls(route.dependant)
        permissions = [c.permission for c in calls if isinstance(c, PermissionCheck)]
        features = [c.feature for c in calls if isinstance(c, FeatureCheck)]
        for method in sorted(route.methods or ()):
            table.append(
                RouteInfo(
                    method=method,
                    path=context.path or route.path,
                    permission=permissions[0] if permissions else None,
                    feature=features[0] if features else None,
                    authenticated=current_principal in calls,
                    has_body=route.dependant.body_params != [],
                    module=route.endpoint.__module__,
                )
            )
    return table


# This helper's domains: their allowed calls must succeed, their bodies get the injection run.
PLATFORM_MODULES = ("app.core.", "app.tenants.", "app.users.", "app.sites.", "app.audit.")
APP = create_app(Settings(migrate_on_start=False))
ROUTES = route_table(APP)
