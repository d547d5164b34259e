"""The compose backend for real, on this machine's engine (podman here, Docker elsewhere):
the whole stack up through testcontainers' DockerCompose with every target up, a container
started by a testcontainers fixture, and each bad input ending in one line that names the
service with nothing left behind.

    $ ./test tests/stack/test_compose_containers.py -q      # ~2 min warm; cold adds the image builds
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from codesync_load import __version__
from codesync_load.errors import HarnessError
from codesync_load.stack import open_stack, promapi
from codesync_load.stack.compose import PROJECT_LABEL, ComposeStack
from codesync_load.stack.engine import Engine
from codesync_load.stack.images import CONTAINERFILES, build_image
from codesync_load.stack.ports import HOST, accepts_connections, free_port
from codesync_load.stack.tracker import TWIN_RELEASE, tracker_ready
from tests.stack._support import run_cli
from tests.verify_live._tracker_runs import REQUESTS, drive, judge_run
from verify.tracker import TrackerAccess, send_control, settled_events

# A cold machine builds the images during the first test (~20 min on 2 busy cores); warm, seconds.
pytestmark = [pytest.mark.container, pytest.mark.timeout(2400)]

SERVICES = {
    "postgres",
    "redis",
    "codesync-api",
    "codesync-yjs",
    "node-exporter",
    "postgres-exporter",
    "redis-exporter",
    "blackbox-exporter",
    "alertmanager",
    "prometheus",
    "bugsink",
}


def read_back_one_event(record: dict) -> str:
    """Send one event with the real sentry-sdk to the record's DSN; the message Bugsink lists."""
    import time

    import sentry_sdk

    access = TrackerAccess.from_record(record)
    assert access is not None
    since = time.time() - 0.5
    client = sentry_sdk.Client(dsn=record["dsn"], default_integrations=False)
    with sentry_sdk.new_scope() as scope:
        scope.set_client(client)
        try:
            raise RuntimeError("compose tracker test")
        except RuntimeError as err:
            sentry_sdk.capture_exception(err)
    client.flush(timeout=10)
    client.close()
    # The image digests in the background (snappea), as upstream's does.
    (event,) = settled_events(access, since, time.time(), expected=1, timeout=60)
    return event.title


def project_containers(engine: Engine, project: str) -> list[str]:
    result = engine.run("ps", "-a", "--filter", f"label={PROJECT_LABEL}={project}", "--format", "{{.Names}}")
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def engine_leftovers(engine: Engine, project: str) -> dict[str, list[str]]:
    """Containers, pods and networks that name the project (all must be empty after down)."""
    pods = engine.run("pod", "ps", "--format", "{{.Name}}").stdout.split() if engine.name == "podman" else []
    networks = engine.run("network", "ls", "--format", "{{.Name}}").stdout.split()
    return {
        "containers": project_containers(engine, project),
        "pods": [pod for pod in pods if project in pod],
        "networks": [net for net in networks if project in net],
    }


def test_the_stack_comes_up_in_containers_and_down_without_a_trace(local_images: Engine, tmp_path: Path) -> None:
    stack = open_stack("compose", state_dir=str(tmp_path), scrape_interval="1s", ready_timeout=120)
    assert isinstance(stack, ComposeStack)
    with stack:
        project = stack.project
        names = project_containers(local_images, project)
        assert len(names) == len(SERVICES)
        running = local_images.run(
            "ps", "--filter", f"label={PROJECT_LABEL}={project}", "--format", "{{.Labels}}"
        ).stdout
        for service in SERVICES:
            assert f"com.docker.compose.service:{service}" in running, service
        # Every target of the rendered config is up: the twin pair, the three exporters, Prometheus.
        # (The uptime probe's jobs are not waited for: their first scrape may be an interval away.)
        assert promapi.targets_not_up(stack.prometheus_url, stack.jobs, stack.probe_jobs) == {}
        assert sorted(stack.jobs) == sorted(
            ["codesync-backend", "codesync-yjs", "node-exporter", "postgres-exporter", "redis-exporter", "prometheus"]
        )
        # The uptime probe (blackbox-exporter container): its two jobs try the containerised
        # twin's /health and PostgreSQL's port through the exporter's loopback port.
        blackbox_port = stack.ports["blackbox"]
        probes = {
            t["job"]: (t["instance"], t["scrapeUrl"].split("/probe")[0])
            for t in promapi.active_targets(stack.prometheus_url)
            if t["job"].startswith("uptime-")
        }
        assert probes == {
            "uptime-health": (f"{stack.api_url}/health", f"http://{HOST}:{blackbox_port}"),
            "uptime-database": (f"{HOST}:{stack.ports['postgres']}", f"http://{HOST}:{blackbox_port}"),
        }
        assert stack.probe_jobs == ["uptime-health", "uptime-database"]
        assert promapi.alertmanager_ready(stack.alertmanager_url)
        # Loopback only: every URL the harness will send traffic to is 127.0.0.1.
        for url in (stack.api_url, stack.yjs_url, stack.prometheus_url, stack.alertmanager_url):
            assert url and url.split("//")[1].startswith(f"{HOST}:"), url
        # The containerised twin serves the API from the containerised PostgreSQL: a signup
        # lands in the users table of that database, counted exactly.
        assert promapi.get(f"{stack.api_url}/health")[0] == 200
        recorded = run_cli("stack", "status", "--json", "--state-dir", str(tmp_path))
        assert '"backend": "compose"' in recorded.stdout
        # The error tracker is the bugsink container, on the port the launcher picked; the
        # project with the key CodeSync was given and the token were created inside it, so an
        # event sent with the twin's DSN by the real sentry-sdk is read back through the API.
        tracker = stack.tracker_record
        assert tracker is not None and tracker["url"] == f"http://{HOST}:{stack.ports['tracker']}"
        assert tracker_ready(tracker["url"])
        assert json.loads((tmp_path / "stack.json").read_text())["tracker"]["dsn"] == tracker["dsn"]
        wrapper = stack.wrapper.read_text() if stack.wrapper else ""
        assert f"export SENTRY_DSN={tracker['dsn']}" in wrapper
        assert read_back_one_event(tracker) == "RuntimeError: compose tracker test"
        # The tracker check's control (sent when 5xx are missing) finds the project's DSN through
        # the container's API and reaches it where the harness does, whatever host the DSN names.
        control = send_control(TrackerAccess.from_record(tracker))
        assert control.error is None and control.stored_after is not None, control
        assert control.dsn == tracker["dsn"], control
    assert engine_leftovers(local_images, project) == {"containers": [], "pods": [], "networks": []}
    assert not accepts_connections(int(tracker["url"].rsplit(":", 1)[1]))  # stopped with the stack
    assert not (tmp_path / "stack.json").exists() or "compose" not in (tmp_path / "stack.json").read_text()


@pytest.fixture
def redis_container(local_images: Engine, docker_api: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A Redis container started by testcontainers' DockerContainer through the engine's
    Docker API (podman's service here), on host networking bound to 127.0.0.1; its port."""
    for name, value in docker_api.items():
        monkeypatch.setenv(name, value)
    from testcontainers.core.config import ConnectionMode, testcontainers_config
    from testcontainers.core.container import DockerContainer

    monkeypatch.setattr(testcontainers_config, "_ryuk_disabled", True)
    monkeypatch.setattr(testcontainers_config, "connection_mode_override", ConnectionMode.docker_host)
    port = free_port()
    container = DockerContainer(
        "codesync-local/redis:latest",
        command=f"redis-server --bind 127.0.0.1 --port {port} --save '' --appendonly no",
        network_mode="host",
    )
    container.start()
    try:
        client = redis.Redis(host=HOST, port=port, socket_timeout=2)
        from tests.stack._support import wait_for

        wait_for(lambda: _pings(client), 30, "redis in its container answering PING")
        yield port
    finally:
        container_id = container.get_wrapped_container().id
        container.stop()
        assert local_images.run("ps", "-a", "-q", "--filter", f"id={container_id}").stdout.strip() == ""


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_the_containerised_twins_5xx_reach_the_bugsink_container_one_to_one(
    local_images: Engine, tmp_path: Path
) -> None:
    """The error witness in the compose stack: the twin's container reports through the real
    sentry-sdk to the bugsink container (DSN and project from the launcher), which digests in
    the background as the upstream image does; the check reconciles every 5xx with one event."""
    stack = open_stack("compose", state_dir=str(tmp_path), faults=["error-burst=1.0"], ready_timeout=120)
    with stack:
        rounds = 20
        ledger = drive(stack, tmp_path / "run", rounds=rounds, parallel=8)
        assert ledger.total("http", status=500) == rounds * len(REQUESTS)
        result = judge_run(tmp_path / "run", stack.tracker_record)
        assert result.verdict == "pass", result.render()
        # The launcher gave the twin its release (SENTRY_RELEASE) and the check expects it.
        assert stack.tracker_record["release"] == TWIN_RELEASE == f"codesync-twin@{__version__}"
        assert result.summary == (
            f"{rounds * len(REQUESTS)} 5xx on 2 route(s), {rounds * len(REQUESTS)} events one to one; "
            f"no event for the 0 4xx; release codesync-twin@{__version__}; no authorization/cookie header"
        )
        assert f"in Bugsink http://{HOST}:{stack.ports['tracker']} project 1," in (result.measured or ""), (
            result.measured
        )


def test_a_testcontainers_fixture_runs_redis_from_the_local_image(redis_container: int) -> None:
    client = redis.Redis(host=HOST, port=redis_container, socket_timeout=2)
    try:
        assert client.incrby("codesync-load:tc", 137) == 137
        assert client.incrby("codesync-load:tc", 137) == 274
        assert client.info("server")["tcp_port"] == redis_container
    finally:
        client.close()


# ----- bad input: one line naming the service, nothing left behind -------------------------


def test_a_container_that_never_becomes_ready_is_named_with_its_log(local_images: Engine, tmp_path: Path) -> None:
    stack = ComposeStack(state_dir=tmp_path, twin_args=["--no-such-flag"], ready_timeout=60)
    with pytest.raises(HarnessError) as err:
        stack.up()
    message = str(err.value)
    assert message.startswith("service codesync-api stopped (exited) during start-up: last log lines: "), message
    assert "unrecognized arguments: --no-such-flag" in message
    assert "\n" not in message
    assert engine_leftovers(local_images, stack.project) == {"containers": [], "pods": [], "networks": []}
    assert not (tmp_path / "stack.json").exists()


def test_a_port_taken_on_loopback_is_named_before_anything_starts(local_images: Engine, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind((HOST, 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_cli(
            "stack", "up", "--backend", "compose", "--port", f"prometheus={port}", "--state-dir", str(tmp_path)
        )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"codesync-load: error: prometheus port {port} on {HOST} is in use; stop what listens there "
        f"or drop --port prometheus={port} to get a free port"
    ]
    assert "codesync-load-" not in local_images.run("ps", "-a", "--format", "{{.Names}}").stdout


def test_a_failing_image_build_names_the_image_and_its_log(local_images: Engine, tmp_path: Path) -> None:
    containerfile = tmp_path / "broken.Containerfile"
    containerfile.write_text(
        "FROM codesync-local/debian-apt:bookworm\nRUN echo 'no such package today' >&2 && exit 3\n"
    )
    before = local_images.run("ps", "-a", "--external", "-q").stdout.split()
    with pytest.raises(HarnessError) as err:
        build_image(local_images, "codesync-local/broken:test", containerfile, CONTAINERFILES, tmp_path)
    message = str(err.value)
    assert message.startswith("image codesync-local/broken:test (broken.Containerfile) failed to build (exit ")
    assert "no such package today" in message
    assert f"(log: {tmp_path / 'build-broken.log'})" in message
    # --force-rm: the build container of the failed step is gone, and no image was tagged.
    assert local_images.run("ps", "-a", "--external", "-q").stdout.split() == before
    assert local_images.run("image", "exists", "codesync-local/broken:test").returncode == 1


def test_an_engine_without_an_api_socket_is_one_line(tmp_path: Path) -> None:
    from codesync_load.stack.engine import require_api

    with pytest.raises(HarnessError) as err:
        require_api(f"unix://{tmp_path}/no.sock")
    assert str(err.value) == (
        f"no Docker-compatible API answers at unix://{tmp_path}/no.sock; start one "
        "(`podman system service --time=0 unix://PATH`, or the Docker daemon) and set DOCKER_HOST to it"
    )


def test_no_engine_at_all_is_one_line_naming_both(tmp_path: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("bash", "sh", "mkdir", "mktemp", "mv", "cat", "id", "dirname"):
        found = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if found:
            (bare / tool).symlink_to(found)
    import sys

    (bare / "python").symlink_to(sys.executable)
    result = run_cli("stack", "up", "--backend", "compose", "--state-dir", str(tmp_path), env={"PATH": str(bare)})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "codesync-load: error: no container engine can run here: Docker: the docker CLI is not installed; "
        "podman: podman is not installed (install it with scripts/containers.sh); use --backend local"
    ]
