"""Fixtures for the container tests: an engine made ready by the project's own script, the
local images built once (cached outside the git tree), and a Docker-compatible API socket
for testcontainers.

    container_engine   session: scripts/containers.sh installs podman/runc/debootstrap, then
                       find_engine(); where podman cannot run, every `container` test is
                       skipped with that one-line reason (visible in the -ra summary)
    local_images       session: ensure_images() (seconds when cached, minutes cold)
    docker_api         session: `podman system service` on a socket (stopped by PID after)
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from codesync_load.errors import HarnessError
from codesync_load.stack.engine import (
    CONTAINERS_SCRIPT,
    Engine,
    find_engine,
    podman_service,
    testcontainers_environment,
)


@pytest.fixture(scope="session")
def container_engine() -> Engine:
    """The engine, prepared by scripts/containers.sh (it installs what is missing, as root)."""
    if os.environ.get("CODESYNC_CONTAINER_ENGINE") != "docker":
        result = subprocess.run(["bash", str(CONTAINERS_SCRIPT)], capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            why = (result.stderr.strip().splitlines() or ["scripts/containers.sh failed"])[-1]
            pytest.skip(f"podman cannot run on this machine: {why}")
    try:
        return find_engine()
    except HarnessError as err:
        pytest.skip(f"no container engine can run here: {err}")


@pytest.fixture(scope="session")
def local_images(container_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """Every local image built or found in the cache (podman only: Docker runs upstream images)."""
    from codesync_load.stack.images import ensure_images

    if container_engine.name != "podman":
        pytest.skip("local images are built with podman; this machine runs Docker")
    built = ensure_images(container_engine, tmp_path_factory.mktemp("image-builds"))
    print(f"local images ready in {built.seconds:.0f} s: {'; '.join(built.notes)}")
    return container_engine


@pytest.fixture(scope="session")
def docker_api(container_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """DOCKER_HOST and testcontainers' settings for a Docker-compatible API socket."""
    if container_engine.name == "docker":
        yield {"TESTCONTAINERS_RYUK_DISABLED": "true"}
        return
    # A short path: unix socket paths are limited to ~100 bytes.
    run_dir = Path(tmp_path_factory.mktemp("api", numbered=True))
    with podman_service(container_engine, run_dir) as docker_host:
        yield testcontainers_environment(docker_host)
