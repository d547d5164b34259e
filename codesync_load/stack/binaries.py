"""Find the monitoring binaries on PATH, or say which Debian package provides each.

    >>> find_binary("prometheus")
    '/usr/bin/prometheus'
    >>> find_binaries(["prometheus", "promtool"])      # HarnessError naming every missing one

Checked before anything starts, so a missing binary costs one line and leaves nothing running.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable

from codesync_load.errors import HarnessError

BINARIES_NOTE = "(or use --backend compose or --backend external)"

# Executable name -> the Debian package that installs it.
DEBIAN_PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "prometheus-node-exporter": "prometheus-node-exporter",
    "prometheus-postgres-exporter": "prometheus-postgres-exporter",
    "prometheus-redis-exporter": "prometheus-redis-exporter",
    "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
}


def find_binary(name: str) -> str | None:
    """Absolute path of `name` on the current PATH, or None."""
    return shutil.which(name, path=os.environ.get("PATH", os.defpath))


def find_binaries(names: Iterable[str]) -> dict[str, str]:
    """Every name resolved to a path; HarnessError listing the missing ones and their packages."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        path = find_binary(name)
        if path:
            found[name] = path
        else:
            missing.append(name)
    if missing:
        packages = sorted({DEBIAN_PACKAGES.get(name, name) for name in missing})
        raise HarnessError(
            f"{', '.join(missing)} not found on PATH; install with `apt-get install {' '.join(packages)}` "
            + BINARIES_NOTE
        )
    return found
