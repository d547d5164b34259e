"""The compose backend's files and adapter, checked without starting a container: the
local-images override and the real-CodeSync override as podman-compose renders them (the
structure CI can check without a CodeSync checkout), and the Compose v2 calls testcontainers
makes translated for podman.

    $ ./test tests/stack/test_compose.py -q
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codesync_load.errors import HarnessError
from codesync_load.stack.compose import (
    CODESYNC_OVERRIDE,
    COMPOSE_FILE,
    LOCAL_OVERRIDE,
    PORT_VARIABLES,
    STAGES,
    ComposeStack,
    codesync_source,
)
from codesync_load.stack.compose_adapter import split_globals, to_compose_v2, translate
from codesync_load.stack.engine import Engine
from codesync_load.stack.render import REPO_ROOT


@pytest.fixture
def podman_renders(container_engine: Engine) -> None:
    """podman-compose renders with podman: the session's engine fixture installs it when missing.

    (A collection-time `shutil.which` skipped these tests on a fresh machine, before the
    container tests' set-up had installed podman.)
    """
    if shutil.which("podman") is None:
        pytest.skip("podman-compose needs podman to render; this machine's engine is Docker without podman")


def render(*files: str, env: dict[str, str] | None = None) -> dict:
    """`compose config --format json` through the adapter testcontainers runs (podman-compose)."""
    argv = [sys.executable, "-m", "codesync_load.stack.compose_adapter", "compose"]
    for name in files:
        argv += ["-f", str(REPO_ROOT / name)]
    result = subprocess.run(
        [*argv, "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "codesync-load-test", **(env or {})},
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_the_adapter_answers_compose_v2_calls_in_podman_compose_terms() -> None:
    assert split_globals(["-f", "a.yml", "-f", "b.yml", "up", "--detach", "postgres"]) == (
        ["-f", "a.yml", "-f", "b.yml"],
        "up",
        ["--detach", "postgres"],
    )
    assert translate("up", ["--wait", "postgres", "redis"]) == ["-d", "postgres", "redis"]
    assert translate("down", ["--volumes"]) == ["-t", "5", "-v"]
    assert translate("logs", ["prometheus"]) == ["prometheus"]
    entry = {
        "Id": "abc",
        "Names": ["codesync-load-x_prometheus_1"],
        "Command": ["/usr/bin/prometheus", "--web.enable-lifecycle"],
        "State": "running",
        "ExitCode": 0,
        "Labels": {"io.podman.compose.service": "prometheus"},
        "Ports": [{"host_ip": "127.0.0.1", "container_port": 9090, "host_port": 19090, "protocol": "tcp"}],
    }
    assert to_compose_v2(entry, "codesync-load-x") == {
        "ID": "abc",
        "Name": "codesync-load-x_prometheus_1",
        "Command": "/usr/bin/prometheus --web.enable-lifecycle",
        "Project": "codesync-load-x",
        "Service": "prometheus",
        "State": "running",
        "Health": "",
        "ExitCode": 0,
        "Publishers": [{"URL": "127.0.0.1", "TargetPort": 9090, "PublishedPort": 19090, "Protocol": "tcp"}],
    }


@pytest.mark.usefixtures("podman_renders")
def test_local_images_mode_is_loopback_only_and_needs_no_registry() -> None:
    ports = {variable: str(41000 + index) for index, variable in enumerate(PORT_VARIABLES.values())}
    config = render(COMPOSE_FILE, LOCAL_OVERRIDE, env={**ports, "CODESYNC_RUN_DIR": "/tmp/run-x"})
    services = config["services"]
    # Grafana and MinIO have no Debian package: not in this mode. Every service the stages start is.
    assert set(services) == {service for stage in STAGES for service in stage}
    for name, service in services.items():
        assert service["image"].startswith("codesync-local/"), name
        assert service["network_mode"] == "host", name
        assert not service.get("ports"), name
        assert not service.get("depends_on"), name
        assert service["healthcheck"]["disable"] is True, name
    text = json.dumps(services)
    for variable, port in ports.items():
        assert port in text, variable
    # Every listener is on 127.0.0.1; no service listens on every interface.
    assert "0.0.0.0" not in text
    assert "--web.listen-address=127.0.0.1:" + ports["CODESYNC_PROMETHEUS_PORT"] in services["prometheus"]["command"]
    assert "--config.file=/tmp/run-x/prometheus.yml" in services["prometheus"]["command"]
    assert "/tmp/run-x:/tmp/run-x:ro" in services["prometheus"]["volumes"]
    assert services["codesync-api"]["environment"]["PORT"] == ports["CODESYNC_API_PORT"]
    assert services["codesync-yjs"]["environment"]["YJS_PORT"] == ports["CODESYNC_YJS_PORT"]
    assert services["postgres"]["environment"]["PGPORT"] == ports["CODESYNC_POSTGRES_PORT"]
    database = f"@127.0.0.1:{ports['CODESYNC_POSTGRES_PORT']}/codesync"
    assert services["codesync-api"]["environment"]["DATABASE_URL"].endswith(database)
    assert services["postgres-exporter"]["environment"]["DATA_SOURCE_NAME"].endswith(database + "?sslmode=disable")


@pytest.mark.usefixtures("podman_renders")
def test_the_real_codesync_replaces_both_twins_from_the_checkout(tmp_path: Path) -> None:
    """CI has no CodeSync checkout: this is the check of that path (its rendered config)."""
    (tmp_path / "backend").mkdir()
    env = {"CODESYNC_SRC": str(tmp_path), "CODESYNC_YJS_COMMAND": "node src/yjs-server.js"}
    for files in ((COMPOSE_FILE, CODESYNC_OVERRIDE), (COMPOSE_FILE, LOCAL_OVERRIDE, CODESYNC_OVERRIDE)):
        services = render(*files, env=env)["services"]
        for name in ("codesync-api", "codesync-yjs"):
            assert services[name]["image"] == "codesync-local/codesync-backend:latest", (files, name)
            assert services[name]["build"]["context"] == str(tmp_path / "backend"), (files, name)
            assert "twin" not in json.dumps(services[name]["command"]), (files, name)
        assert services["codesync-api"]["command"] == ["sh", "-c", "exec npm start"]
        assert services["codesync-yjs"]["command"] == ["sh", "-c", "exec node src/yjs-server.js"]
        # The deployment's variables reach the real backend as they reach the twin.
        assert "METRICS_TOKEN" in services["codesync-api"]["environment"]
    local = render(COMPOSE_FILE, LOCAL_OVERRIDE, CODESYNC_OVERRIDE, env=env)["services"]
    assert local["codesync-api"]["network_mode"] == "host"
    assert "PORT" in local["codesync-api"]["environment"] and "YJS_PORT" in local["codesync-yjs"]["environment"]


def test_a_codesync_checkout_without_a_backend_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(HarnessError) as err:
        codesync_source(tmp_path)
    assert str(err.value) == (
        f"CODESYNC_SRC={tmp_path}: no backend/package.json in it; "
        "set CODESYNC_BACKEND_DIR to the folder of CodeSync's backend"
    )
    with pytest.raises(HarnessError, match="no such directory"):
        codesync_source(tmp_path / "missing")


def test_asking_for_docker_where_none_runs_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODESYNC_CONTAINER_ENGINE", "docker")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    with pytest.raises(HarnessError) as err:
        ComposeStack(state_dir=tmp_path).up()
    message = str(err.value)
    assert message.startswith("no Docker engine is reachable (") and message.endswith(
        "); start one or use --backend local"
    )
    assert "\n" not in message
    assert not (tmp_path / "compose").exists() or not list((tmp_path / "compose").glob("compose-cli"))
