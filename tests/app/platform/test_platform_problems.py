"""Errors are RFC 9457 problem details with a clear message, never a traceback; migrations
apply in order, once, and refuse a broken directory with a clear message."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from app.core.migrations import MigrationError, apply_migrations, discover
from app.core.settings import Settings
from tests.app.conftest import AuthHeaders, TenantFixture
from tests.app.helpers import database_env, run_module

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Not Found",
    }
    wrong = await client.delete("/api/v1/sites")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == PROBLEM


async def test_validation_errors_name_the_field(
    client: httpx.AsyncClient, tenant: TenantFixture, auth_headers: AuthHeaders
) -> None:
    headers = auth_headers(tenant.owner, tenant)
    response = await client.post(
        "/api/v1/sites",
        json={"name": "Shop", "allowed_origins": ["javascript:alert(1)"], "language": "english!"},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["title"] == "Invalid request"
    assert problem["detail"].startswith("body.allowed_origins.0: Value error, an origin looks like")
    assert {tuple(e["loc"]) for e in problem["errors"]} == {
        ("body", "allowed_origins", "0"),
        ("body", "language"),
    }
    assert "javascript" not in response.text  # the input is not echoed back
    not_json = await client.post("/api/v1/sites", content=b"{", headers=headers)
    assert not_json.status_code == 422
    unknown = await client.get(f"/api/v1/sites/{tenant.id}", headers=headers)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "No such site in this tenant."


async def test_unexpected_errors_never_show_a_traceback(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    @app.get("/test-crash")
    async def crash() -> None:
        raise RuntimeError("secret internal detail at /srv/cloop/app.py line 42")

    response = await client.get("/test-crash")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "An unexpected error occurred; it has been logged."
    assert "secret" not in response.text
    assert "Traceback" not in response.text


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.json() == {"status": "ok"}


def test_migrations_are_numbered_and_unique(tmp_path: Path) -> None:
    versions = [m.version for m in discover()]
    assert versions == sorted(set(versions))
    assert versions[0] == 1
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"version 1 is also 0001_a\.sql"):
        discover(tmp_path)
    (tmp_path / "0001_b.sql").unlink()
    (tmp_path / "2_bad.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"named NNNN_snake_case\.sql"):
        discover(tmp_path)


async def test_migrations_apply_once_and_a_failing_one_leaves_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    assert await apply_migrations(settings.owner_database_url) == []  # the template had them all
    (tmp_path / "9001_good.sql").write_text("CREATE TABLE test_good (id int);")
    (tmp_path / "9002_bad.sql").write_text("CREATE TABLE test_bad (id int); SELECT 1/0;")
    with pytest.raises(Exception, match="division by zero"):
        await apply_migrations(settings.owner_database_url, tmp_path)
    (tmp_path / "9002_bad.sql").unlink()
    assert await apply_migrations(settings.owner_database_url, tmp_path) == []
    async with await psycopg.AsyncConnection.connect(settings.owner_database_url) as conn:
        cur = await conn.execute(
            "SELECT to_regclass('test_good') IS NOT NULL, to_regclass('test_bad') IS NULL"
        )
        assert await cur.fetchone() == (True, True)


def test_migrations_command(settings: Settings) -> None:
    env = database_env(settings)
    ok = run_module("app.core.migrations", env=env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "applied 0 migration(s)"
    env["CLOOP_OWNER_DATABASE_URL"] = "postgresql://nobody@/x?host=/nonexistent"
    bad = run_module("app.core.migrations", env=env)
    assert bad.returncode == 1
    assert bad.stderr.startswith("migrations failed: ")
    assert "Traceback" not in bad.stderr
