"""The app's wheelhouse, built on the operator's machine for the hosts' Python.

The project wheel plus every runtime dependency as a binary wheel for CPython 3.13 on Debian 13
(x86_64, glibc 2.41), and pip itself, so that hosts install with `pip --no-index` and never
reach PyPI. The release id is a digest of the wheels' contents: an unchanged tree gives the
same id, so a re-deploy installs nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from infra.inventory import REPO

CACHE = REPO / ".cache" / "release"
MANIFEST = "SHA256SUMS"


class WheelhouseError(Exception):
    """pip could not build or fetch a wheel; the message carries pip's last line."""


@dataclass(frozen=True)
class Target:
    """The hosts' interpreter and platform."""

    python_version: str = "3.13"
    arch: str = "x86_64"
    glibc: tuple[int, int] = (2, 41)

    def pip_args(self) -> list[str]:
        """pip does not widen --platform by itself: name every manylinux the host accepts."""
        major, minor = self.glibc
        platforms = [f"manylinux_{major}_{m}_{self.arch}" for m in range(17, minor + 1)]
        platforms.append(f"manylinux2014_{self.arch}")
        abi = "cp" + self.python_version.replace(".", "")
        args = ["--only-binary=:all:", "--python-version", self.python_version]
        args += ["--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none"]
        for platform in platforms:
            args += ["--platform", platform]
        return args


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    release_id: str
    project_wheel: str


def _pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("ERROR")]
        raise WheelhouseError((errors or result.stderr.splitlines() or ["pip failed"])[-1])


def content_digest(wheel: Path) -> str:
    """Digest of the members of a wheel, not of the zip (whose timestamps vary per build)."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode() + b"\0" + archive.read(name))
    return digest.hexdigest()


def build(target: Target | None = None, source: Path = REPO, cache: Path = CACHE) -> Wheelhouse:
    """Build (or reuse) the wheelhouse of `source` for `target`; returns where it is.

    One build at a time per cache: the staging folder and the source's `build/` are shared."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(target or Target(), source, cache)


def _build(target: Target, source: Path, cache: Path) -> Wheelhouse:
    staging = cache / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(staging), str(source))
    project = next(staging.glob("*.whl"))
    _pip("download", "--quiet", "--dest", str(staging), *target.pip_args(), str(project), "pip")
    wheels = sorted(staging.glob("*.whl"))
    sums = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels}
    release = hashlib.sha256(
        "\n".join(
            f"{w.name} {content_digest(w) if w == project else sums[w.name]}" for w in wheels
        ).encode()
    ).hexdigest()[:12]
    (staging / MANIFEST).write_text("".join(f"{h}  {n}\n" for n, h in sorted(sums.items())))
    final = cache / release
    if not final.exists():
        staging.rename(final)
    else:
        shutil.rmtree(staging)
    return Wheelhouse(final, release, project.name)
