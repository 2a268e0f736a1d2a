"""SQL injection (VAL-1): no SQL is built from values by string formatting anywhere in app/,
and injection payloads in every text field of the API change nothing but that field."""

from __future__ import annotations

import ast
from typing import Any

import httpx
import pytest

from app.core.db import Database
from tests.app.conftest import REPO_ROOT, AuthHeaders, MakeTenant
from tests.app.platform.helpers import snapshot, tenant_tables
from tests.app.platform.routes import APP, ROUTES, RouteInfo
from tests.app.platform.test_platform_matrix import BODIES, _path

pytestmark = [pytest.mark.anyio, pytest.mark.claim("VAL-1")]

PAYLOADS = [
    "'; DROP TABLE sites; --",
    "x' OR '1'='1",
    '"; DELETE FROM tenants; --',
    "$$; TRUNCATE users CASCADE; $$",
    "Robert'); UPDATE memberships SET role = 'owner'; --",
    "%s%s%(x)s {0} \\'; SELECT pg_sleep(10); --",
]
QUERY_CALLS = {"execute", "executemany", "SQL", "stream"}


def _formatted(node: ast.expr) -> bool:
    """An f-string, ``%`` or ``.format()`` or ``+`` on strings: SQL built from values."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return not (isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant))
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
    )


def test_no_sql_is_built_by_string_formatting() -> None:
    offenders = []
    for path in sorted((REPO_ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if name in QUERY_CALLS and _formatted(node.args[0]):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert not offenders, f"SQL built by string formatting: {offenders}"


def test_the_scan_catches_formatting() -> None:
    bad = ast.parse('conn.execute(f"SELECT * FROM t WHERE id = {x}")').body[0]
    assert isinstance(bad, ast.Expr)
    assert isinstance(bad.value, ast.Call)
    assert _formatted(bad.value.args[0])
    good = ast.parse('conn.execute("SELECT * FROM t WHERE id = %s", [x])').body[0]
    assert isinstance(good, ast.Expr)
    assert isinstance(good.value, ast.Call)
    assert not _formatted(good.value.args[0])


def _text_fields(route: RouteInfo) -> list[str]:
    """The string (or list-of-string) fields of the route's JSON body, from its schema."""
    spec = APP.openapi()
    body = spec["paths"][route.path][route.method.lower()]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = []
    for name, prop in spec["components"]["schemas"][ref]["properties"].items():
        kinds = [prop, *prop.get("anyOf", [])]
        if any(
            k.get("type") == "string" or k.get("items", {}).get("type") == "string" for k in kinds
        ):
            fields.append(name)
    return fields


INJECTABLE = [r for r in ROUTES if r.id in BODIES and _text_fields(r)]


@pytest.mark.parametrize("route", INJECTABLE, ids=lambda r: r.id)
async def test_injection_payloads_change_nothing(
    route: RouteInfo,
    client: httpx.AsyncClient,
    db: Database,
    make_tenant: MakeTenant,
    auth_headers: AuthHeaders,
) -> None:
    mine, theirs = await make_tenant(), await make_tenant()
    tables = {t["table_name"] for t in await tenant_tables(db)}
    fields = _text_fields(route)
    theirs_before = await snapshot(db, theirs)
    for field in fields:
        for payload in PAYLOADS:
            path, _ = await _path(route, db, mine)
            example: Any = BODIES[route.id].get(field, "")
            value: Any = [payload] if isinstance(example, list) else payload
            body = {**BODIES[route.id], field: value}
            response = await client.request(
                route.method, path, json=body, headers=auth_headers(mine.owner, mine)
            )
            case = f"{route.id} {field}={payload!r} -> {response.status_code}"
            assert response.status_code < 500, f"{case}: {response.text}"
            if (
                response.is_success
                and isinstance(response.json(), dict)
                and field in response.json()
            ):
                assert response.json()[field] == value, case  # stored verbatim, as data
    assert await snapshot(db, theirs) == theirs_before
    assert {t["table_name"] for t in await tenant_tables(db)} == tables
    async with db.owner() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM memberships WHERE role = 'owner'")
        assert await cur.fetchone() == {"n": 2}


def test_payloads_reach_text_fields_of_every_body_route() -> None:
    """Every body with text of this helper's routes is in the injection run."""
    ours = {r.id for r in ROUTES if r.platform and r.has_body and _text_fields(r)}
    assert ours
    assert ours <= {r.id for r in INJECTABLE}
