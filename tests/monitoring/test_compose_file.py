"""docker-compose.test.yml: the containerised stack, checked without Docker (structure,
mounts of files that exist, healthchecks, one network, consistent secrets) and, where a
Docker engine runs, by `docker compose config`.

    $ .venv/bin/pytest tests/monitoring/test_compose_file.py
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.monitoring._files import COMPOSE_FILE, MONITORING, REPO, load_yaml, with_defaults

SERVICES = {
    "codesync-api",
    "codesync-yjs",
    "postgres",
    "redis",
    "minio",
    "prometheus",
    "alertmanager",
    "grafana",
    "node-exporter",
    "postgres-exporter",
    "redis-exporter",
    "blackbox-exporter",
    "bugsink",
}
IMAGES = {
    "postgres": "postgres:16-alpine",
    "redis": "redis:7-alpine",
    "minio": "minio/minio:",
    "prometheus": "prom/prometheus:",
    "alertmanager": "prom/alertmanager:",
    "grafana": "grafana/grafana:",
    "node-exporter": "prom/node-exporter:",
    "postgres-exporter": "prometheuscommunity/postgres-exporter:",
    "redis-exporter": "oliver006/redis_exporter:",
    "bugsink": "bugsink/bugsink:",
}
PUBLISHED = {
    "codesync-api": (4000, 4000),
    "codesync-yjs": (4001, 4001),
    "prometheus": (9090, 9090),
    "alertmanager": (9093, 9093),
    "grafana": (3001, 3000),
    "bugsink": (8000, 8000),
}
BACKEND_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SECRET",
    "CSRF_SECRET",
    "SESSION_SECRET",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "METRICS_TOKEN",
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


def env(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment with ${VAR:-default} resolved to the defaults."""
    raw = service.get("environment", {})
    assert isinstance(raw, dict), "use the mapping form of environment"
    return {key: with_defaults(str(value)) for key, value in raw.items()}


def binds(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (defaults resolved) of the service's bind mounts."""
    result = {}
    for volume in service.get("volumes", []):
        parts = with_defaults(volume).split(":")
        result[parts[1]] = parts[0]
    return result


def test_every_service_of_the_stack_is_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


def test_codesync_images_come_from_variables_defaulting_to_the_twin(compose: dict[str, Any]) -> None:
    for name, variable in (("codesync-api", "CODESYNC_API_IMAGE"), ("codesync-yjs", "CODESYNC_YJS_IMAGE")):
        service = compose["services"][name]
        assert service["image"] == f"${{{variable}:-codesync-twin:latest}}"
        assert service["build"] == {"context": ".", "dockerfile": "twin/Dockerfile"}
        assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file()


def test_third_party_images(compose: dict[str, Any]) -> None:
    for name, image in IMAGES.items():
        assert compose["services"][name]["image"].startswith(image), name


def test_published_ports_are_the_guides_on_loopback_only(compose: dict[str, Any]) -> None:
    published = {}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host_ip, host_port, container_port = str(port).split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"
            published[name] = (int(host_port), int(container_port))
    assert published == PUBLISHED


def test_bind_mounts_name_files_that_exist(compose: dict[str, Any]) -> None:
    checked = 0
    for name, service in compose["services"].items():
        for target, source in binds(service).items():
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts {source} (-> {target}), which does not exist"
                checked += 1
    assert checked == 7  # blackbox-exporter's monitoring/blackbox.yml is the 7th


def test_prometheus_mounts_what_prometheus_yml_expects(compose: dict[str, Any]) -> None:
    service = compose["services"]["prometheus"]
    mounts = binds(service)
    assert mounts["/etc/prometheus/prometheus.yml"] == "./monitoring/prometheus.yml"
    assert mounts["/etc/prometheus/alerts.yml"] == "./monitoring/alerts.yml"
    config = load_yaml(MONITORING / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]  # resolved next to /etc/prometheus/prometheus.yml
    token_paths = {
        job["authorization"]["credentials_file"] for job in config["scrape_configs"] if "authorization" in job
    }
    assert token_paths == {"/etc/prometheus/metrics_token"}
    assert mounts["/etc/prometheus/metrics_token"] == "./monitoring/metrics_token"
    assert "--config.file=/etc/prometheus/prometheus.yml" in service["command"]
    assert "--storage.tsdb.retention.time=30d" in service["command"]


def test_alertmanager_and_grafana_mount_their_config(compose: dict[str, Any]) -> None:
    alertmanager = compose["services"]["alertmanager"]
    assert binds(alertmanager)["/etc/alertmanager/alertmanager.yml"] == "./monitoring/alertmanager.yml"
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
    grafana = binds(compose["services"]["grafana"])
    assert grafana["/etc/grafana/provisioning"] == "./monitoring/grafana/provisioning"
    provider = load_yaml(MONITORING / "grafana" / "provisioning" / "dashboards" / "codesync.yml")["providers"][0]
    assert grafana[provider["options"]["path"]] == "./monitoring/grafana/dashboards"


def test_healthchecks_everywhere_a_check_is_possible(compose: dict[str, Any]) -> None:
    """redis_exporter's image is FROM scratch: nothing in it can run a check."""
    without = {name for name, service in compose["services"].items() if "healthcheck" not in service}
    assert without == {"redis-exporter"}
    for name, service in compose["services"].items():
        if name in without:
            continue
        test = service["healthcheck"]["test"]
        assert test[0] in {"CMD", "CMD-SHELL"} and len(test) >= 2, name


def test_depends_on_waits_only_for_services_that_can_become_healthy(compose: dict[str, Any]) -> None:
    """condition: service_healthy on a service without healthcheck would make `up --wait` fail."""
    for name, service in compose["services"].items():
        deps = service.get("depends_on", {})
        items = deps.items() if isinstance(deps, dict) else ((dep, {}) for dep in deps)
        for dep, spec in items:
            assert dep in compose["services"], f"{name} depends on unknown {dep}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in compose["services"][dep], f"{name} waits for {dep}, which has no healthcheck"


def test_one_network_for_all(compose: dict[str, Any]) -> None:
    assert set(compose["networks"]) == {"codesync"}
    for name, service in compose["services"].items():
        assert service["networks"] == ["codesync"], name


def test_backend_environment_is_complete_and_consistent(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres, redis, minio = env(services["postgres"]), env(services["redis"]), env(services["minio"])
    token = (MONITORING / "metrics_token").read_text().strip()
    for name in ("codesync-api", "codesync-yjs"):
        backend = env(services[name])
        for key in BACKEND_ENV:
            assert backend.get(key), f"{name} lacks {key}"
        for key in ("JWT_SECRET", "CSRF_SECRET", "SESSION_SECRET"):
            assert len(backend[key]) >= 32, f"{name} {key} is shorter than 32 characters"
        db = urlsplit(backend["DATABASE_URL"])
        assert (db.hostname, db.port, db.path) == ("postgres", 5432, f"/{postgres['POSTGRES_DB']}")
        assert (db.username, db.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])
        cache = urlsplit(backend["REDIS_URL"])
        assert (cache.hostname, cache.port, cache.password) == ("redis", 6379, redis["REDIS_PASSWORD"])
        assert urlsplit(backend["S3_ENDPOINT"]).hostname == "minio"
        assert (backend["S3_ACCESS_KEY"], backend["S3_SECRET_KEY"]) == (
            minio["MINIO_ROOT_USER"],
            minio["MINIO_ROOT_PASSWORD"],
        )
        assert backend["METRICS_TOKEN"] == token, "METRICS_TOKEN's default differs from monitoring/metrics_token"


def test_redis_requires_its_password_and_the_exporters_know_it(compose: dict[str, Any]) -> None:
    services = compose["services"]
    password = env(services["redis"])["REDIS_PASSWORD"]
    assert "--requirepass" in " ".join(services["redis"]["command"])
    assert env(services["redis-exporter"])["REDIS_PASSWORD"] == password
    dsn = urlsplit(env(services["postgres-exporter"])["DATA_SOURCE_NAME"])
    assert (dsn.hostname, dsn.password) == ("postgres", env(services["postgres"])["POSTGRES_PASSWORD"])


def bugsink_docker_settings() -> str:
    """The settings the bugsink/bugsink image runs with: Bugsink's docker template, from the
    package installed here (the local image is built from the same template)."""
    import bugsink

    return (Path(bugsink.__file__).parent / "conf_templates" / "docker.py.template").read_text()


def test_bugsink_is_configured_by_names_its_image_reads(compose: dict[str, Any]) -> None:
    """Every variable the service sets is one Bugsink's docker settings read (a misspelt quota
    would silently leave the 1,000-per-5-minutes default in place and drop 5xx events)."""
    service = compose["services"]["bugsink"]
    settings = bugsink_docker_settings()
    variables = env(service)
    for name in variables:
        assert f'os.getenv("{name}"' in settings or f'os.environ.get("{name}"' in settings, name
    quotas = {name: int(value) for name, value in variables.items() if name.startswith("MAX_EVENTS_")}
    assert set(quotas) == {
        f"MAX_EVENTS_{scope}PER_{period}" for scope in ("", "PER_PROJECT_") for period in ("5_MINUTES", "HOUR", "MONTH")
    }
    assert min(quotas.values()) >= 10**9
    # `bugsink-manage check --deploy` (the image's first start step) refuses a weak key.
    assert len(variables["SECRET_KEY"]) >= 50 and not variables["SECRET_KEY"].startswith("django-insecure")
    assert variables["PHONEHOME"] == "false"  # nothing here reaches the internet
    # CodeSync's containers send events to http://KEY@bugsink:8000/1; the harness reads the
    # API at 127.0.0.1:8000: Django must accept both hosts.
    from codesync_load.stack.compose import UPSTREAM_PUBLISHED, UPSTREAM_TRACKER_NETLOC

    host, port = UPSTREAM_TRACKER_NETLOC.split(":")
    assert {host, "127.0.0.1"} <= set(variables["ALLOWED_HOSTS"].split(","))
    assert int(port) == int(variables["PORT"]) == PUBLISHED["bugsink"][1]
    assert UPSTREAM_PUBLISHED["bugsink"] == PUBLISHED["bugsink"][0]
    assert urlsplit(variables["BASE_URL"]).port == PUBLISHED["bugsink"][0]
    for name in ("codesync-api", "codesync-yjs"):
        assert {"SENTRY_DSN", "SENTRY_RELEASE"} <= set(compose["services"][name]["environment"]), name


def test_bugsink_image_version_is_one_the_project_supports(compose: dict[str, Any]) -> None:
    """The upstream image's tag is the version the local image installs from PyPI, and it lies
    in pyproject.toml's range for bugsink (the one the local stack and the tests run)."""
    import tomllib

    from packaging.requirements import Requirement

    from codesync_load.stack.images import upstream_image_tag

    tag = upstream_image_tag("bugsink")
    assert compose["services"]["bugsink"]["image"] == f"bugsink/bugsink:{tag}"
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [Requirement(dep).specifier for dep in dependencies if Requirement(dep).name == "bugsink"]
    assert tag in spec, (tag, str(spec))


def docker_compose_or_skip() -> list[str]:
    """The `docker compose` command line, or skip with the reason it cannot run here."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no Docker engine: the docker CLI is not installed")
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        pytest.skip("no Docker engine: `docker info` did not answer within 20 s")
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        pytest.skip(f"no Docker engine: {reason}")
    version = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=20)
    if version.returncode != 0:
        pytest.skip("Docker engine found but the compose plugin is missing (apt-get install docker-compose-plugin)")
    return [docker, "compose"]


@pytest.mark.docker
def test_docker_compose_config_accepts_the_file() -> None:
    command = docker_compose_or_skip()
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
