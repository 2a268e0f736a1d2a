"""Full-disk encryption in the qemu lab: install, boot to the unlock shell, unlock to SSH.

Baseline (same run): the rescue system's boot to SSH, a plain Debian boot on the same
emulated machine, so the encrypted boot's figures read against an unencrypted one. The VM
is emulated (TCG), so absolute figures are several times a real server's. Needs root.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from infra.fde.image import rescue_image, system_tarball
from infra.fde.lab import installed


def main() -> None:
    started = time.monotonic()
    system_tarball()
    rescue_image()
    images_s = time.monotonic() - started
    with (
        tempfile.TemporaryDirectory(prefix="cloop-fde-bench-") as tmp,
        installed(Path(tmp), out=lambda line: None) as lab,
    ):
        t = lab.timings
    print(f"images (cached after the first run)   {images_s:7.1f} s")
    print(f"baseline: rescue boot to SSH          {t['rescue_boot_s']:7.1f} s")
    print(f"install (API to reset, incl. rescue)  {t['install_s']:7.1f} s")
    print(f"boot to unlock shell                  {t['boot_to_unlock_s']:7.1f} s")
    print(f"unlock to SSH                         {t['unlock_to_ssh_s']:7.1f} s")
    print(
        f"install_s={t['install_s']:.1f} boot_to_unlock_s={t['boot_to_unlock_s']:.1f} "
        f"unlock_to_ssh_s={t['unlock_to_ssh_s']:.1f} rescue_boot_s={t['rescue_boot_s']:.1f}"
    )


if __name__ == "__main__":
    main()
