"""The `install-fde` and `unlock` sub-commands of `cloop-ops` (registered in infra/cli.py)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, ParamSpec

import typer

from infra import inventory as inventories
from infra.fde.image import ImageError
from infra.fde.install import (
    FdeError,
    Installer,
    Kdf,
    find_host,
    operator_identity,
    state_dir,
)
from infra.fde.layer import LayerError
from infra.fde.ssh import UnreachableError
from infra.fde.unlock import read_passphrase
from infra.fde.unlock import unlock as unlock_host
from infra.inventory import InventoryError
from infra.provision.client import DEFAULT_ENDPOINT, TokenMissingError, make_client, token_from_env

P = ParamSpec("P")
ERRORS = (FdeError, UnreachableError, InventoryError, TokenMissingError, ImageError, LayerError)

InventoryArg = Annotated[str, typer.Argument(help="inventory name: production, staging or lab")]


def one_line_errors(command: Callable[P, None]) -> Callable[P, None]:
    """Expected failures print `error: <message>` and exit 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except ERRORS as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


@one_line_errors
def install_fde(
    inventory: InventoryArg,
    host: Annotated[str, typer.Argument(help="the server to reinstall (its disk is wiped)")],
    disk: Annotated[str, typer.Option(help="the disk in the rescue system")] = "/dev/sda",
    kdf_ms: Annotated[int, typer.Option(help="argon2id time per unlock, ms")] = 2000,
    kdf_memory_kib: Annotated[int, typer.Option(help="argon2id memory, KiB")] = 1048576,
) -> None:
    """Reinstall HOST from the rescue system onto LUKS2 + LVM with remote unlock
    (HCLOUD_TOKEN; passphrase from CLOOP_FDE_PASSPHRASE[_FILE] or a prompt)."""
    inv = inventories.load(inventory)
    target = find_host(inv, host)
    passphrase = read_passphrase(f"new, for {host}")
    client, _calls = make_client(
        token_from_env(), os.environ.get("HCLOUD_ENDPOINT", DEFAULT_ENDPOINT)
    )
    Installer(client, inv, target, state_dir(inventory, host), typer.echo, disk=disk,
              kdf=Kdf(kdf_ms, kdf_memory_kib)).run(passphrase)  # fmt: skip


@one_line_errors
def unlock(
    inventory: InventoryArg,
    host: Annotated[str | None, typer.Argument(help="one host (default: every host)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each host")] = 600.0,
) -> None:
    """Unlock the disk of HOST (or every host) over SSH to its initramfs, then wait for SSH."""
    inv = inventories.load(inventory)
    hosts = [find_host(inv, host)] if host else inv.hosts
    passphrase = read_passphrase(inventory)
    for target in hosts:
        state = state_dir(inventory, target.name)
        unlock_host(target, passphrase, state, operator_identity(inv), timeout)
        typer.echo(f"{target.name}: unlocked, SSH answers")
