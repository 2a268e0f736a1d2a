"""`cloop-ops unlock`: type the disk passphrase into a booting server over SSH.

The initramfs runs dropbear with its own host key (pinned at install in `unlock_known_hosts`);
`cryptroot-unlock` reads the passphrase from SSH's standard input, so it is never written to
the server. Then the installed system's sshd (pinned in `known_hosts`) must answer.
"""

from __future__ import annotations

import getpass
import os
import sys
import time
from pathlib import Path

from infra.fde.install import FdeError
from infra.fde.ssh import Remote, UnreachableError
from infra.inventory import Host

PASSPHRASE_VARIABLE = "CLOOP_FDE_PASSPHRASE"  # noqa: S105 (a variable's name)
PASSPHRASE_FILE_VARIABLE = "CLOOP_FDE_PASSPHRASE_FILE"  # noqa: S105


class WrongPassphraseError(FdeError):
    pass


def read_passphrase(purpose: str) -> str:
    """From the operator's secret store: $CLOOP_FDE_PASSPHRASE, the file named by
    $CLOOP_FDE_PASSPHRASE_FILE (e.g. a pass/gopass FIFO), or a prompt on a terminal."""
    if value := os.environ.get(PASSPHRASE_VARIABLE):
        return value
    if file := os.environ.get(PASSPHRASE_FILE_VARIABLE):
        try:
            return Path(file).read_text().rstrip("\n")
        except OSError as exc:
            raise FdeError(f"cannot read the passphrase file {file}: {exc.strerror}") from None
    if not sys.stdin.isatty():
        raise FdeError(
            f"no passphrase: set {PASSPHRASE_VARIABLE} or {PASSPHRASE_FILE_VARIABLE}, "
            "or run on a terminal to be asked"
        )
    return getpass.getpass(f"Disk passphrase ({purpose}): ")


def _remotes(host: Host, state: Path, identity: Path | None) -> tuple[Remote, Remote]:
    pinned = state / "unlock_known_hosts", state / "known_hosts"
    if not all(p.is_file() for p in pinned):
        raise FdeError(f"{host.name}: no host keys in {state}: was it installed with install-fde?")
    assert host.ssh_hostname is not None
    port = host.ssh_port or 22
    return (
        Remote(host.ssh_hostname, port, pinned[0], identity),
        Remote(host.ssh_hostname, port, pinned[1], identity),
    )


def unlock(
    host: Host,
    passphrase: str,
    state: Path,
    identity: Path | None = None,
    timeout_s: float = 600.0,
) -> dict[str, float]:
    """Unlock `host`; return seconds waited for the unlock shell and then for the system."""
    dropbear, system = _remotes(host, state, identity)
    started = time.monotonic()
    while True:
        if dropbear.run("test -x /usr/bin/cryptroot-unlock", limit_s=30).returncode == 0:
            break
        if system.run("true", limit_s=30).returncode == 0:
            raise FdeError(f"{host.name} is already unlocked and running")
        if time.monotonic() - started > timeout_s:
            raise UnreachableError(
                f"{host.name}: neither the unlock shell nor the system answered at "
                f"{host.ssh_hostname}:{host.ssh_port or 22} within {timeout_s:.0f} s"
            )
        time.sleep(2)
    shell_s = time.monotonic() - started
    sent = time.monotonic()
    result = dropbear.run("cryptroot-unlock", data=passphrase.encode(), limit_s=120)
    error = result.stderr.decode(errors="replace")
    if "bad password" in error or "maximum number of tries" in error:
        raise WrongPassphraseError(f"{host.name}: wrong passphrase, the disk stays locked")
    if result.returncode != 0 and "Timeout reached" not in error:
        raise FdeError(
            f"{host.name}: cryptroot-unlock failed: {error.strip() or result.returncode}"
        )
    system.wait(timeout_s)
    return {"boot_to_unlock_s": shell_s, "unlock_to_ssh_s": time.monotonic() - sent}
