"""`cloop-ops`: the operator's command line (provision, buckets, docs, evidence, and the
sub-commands other parts register below). Errors print one line and exit 1, never a traceback.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec

import typer

from infra import inventory as inventories
from infra.docs import write_documents
from infra.evidence.report import main as report
from infra.inventory import InventoryError
from infra.provision import provision as run
from infra.provision.buckets import credentials_from_env, ensure_buckets
from infra.provision.client import DEFAULT_ENDPOINT, TokenMissingError, token_from_env
from infra.provision.desired import desired_resources
from infra.provision.engine import ProvisionError
from infra.provision.guard import ResidencyError, check_resources
from infra.provision.kinds import PlanError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    InventoryError,
    ResidencyError,
    ProvisionError,
    TokenMissingError,
    PlanError,
)

InventoryArg = Annotated[str, typer.Argument(help="inventory name: production, staging or lab")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="print the plan, change nothing")]


P = ParamSpec("P")


def clear_errors(command: Callable[P, None]) -> Callable[P, None]:
    """Expected failures become `error: <message>` on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except EXPECTED_ERRORS as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


@app.command()
@clear_errors
def provision(inventory: InventoryArg, dry_run: DryRun = False) -> None:
    """Create or update the inventory's Hetzner Cloud resources in hel1 (HCLOUD_TOKEN;
    HCLOUD_ENDPOINT overrides the API URL, e.g. for the stand-in)."""
    inv = inventories.load(inventory)
    check_resources(desired_resources(inv))  # refuse a wrong location before asking for a token
    endpoint = os.environ.get("HCLOUD_ENDPOINT", DEFAULT_ENDPOINT)
    run(inv, token=token_from_env(), endpoint=endpoint, dry_run=dry_run,
        state_path=inventories.state_path(inventory), out=typer.echo)  # fmt: skip


@app.command()
@clear_errors
def buckets(inventory: InventoryArg, dry_run: DryRun = False) -> None:
    """Create or update the object-storage buckets in hel1 (S3_ACCESS_KEY / S3_SECRET_KEY;
    S3_ENDPOINT overrides the endpoint, which must still be hel1 or loopback; AWS_CA_BUNDLE
    names the CA of a stand-in)."""
    inv = inventories.load(inventory)
    storage = inv.data.object_storage
    if endpoint := os.environ.get("S3_ENDPOINT"):
        storage = storage.model_copy(update={"endpoint": endpoint})
    for line in ensure_buckets(storage, inv.prefix, credentials_from_env(), dry_run=dry_run):
        typer.echo(line)


@app.command()
@clear_errors
def docs(
    inventory: InventoryArg,
    out: Annotated[Path | None, typer.Option(help="directory (default var/docs/INVENTORY)")] = None,
) -> None:
    """Write the compliance documents (Markdown and HTML) generated from the inventory."""
    inv = inventories.load(inventory)
    target = out or inventories.REPO / "var" / "docs" / inventory
    for path in write_documents(inv, target):
        typer.echo(str(path))


@app.command()
def evidence(
    html: Annotated[Path | None, typer.Option(help="HTML report path")] = None,
) -> None:
    """Every claim with the tests that prove it and their last result (Markdown on stdout)."""
    raise typer.Exit(report(html))


# --- sub-commands of other parts: one line each, "name": "module:function" -------------------
REGISTERED: dict[str, str] = {
    "backup-drill": "infra.backup_drill:command",
    "install-fde": "infra.fde.cli:install_fde",
    "unlock": "infra.fde.cli:unlock",
    "verify": "infra.verify:main",
    "deploy": "infra.deploy.run:main",
}
# --- end of registration block ------------------------------------------------------------------

for _name, _target in REGISTERED.items():
    _module, _function = _target.split(":")
    app.command(_name)(getattr(importlib.import_module(_module), _function))


def main() -> None:
    app(prog_name="cloop-ops", args=sys.argv[1:])
