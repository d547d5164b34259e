"""The local images of docker-compose.local.yml, built on this machine and cached between runs.

    >>> built = ensure_images(engine, log_dir)   # seconds when cached; minutes the first time
    >>> built.notes                              # what was built, what was reused

No registry is needed: the base is Debian itself (`debootstrap --variant=minbase bookworm`
from the machine's own mirror, imported as codesync-local/debian:bookworm), and every
service's image is containers/<name>.Containerfile on top of it (apt-get for PostgreSQL,
Redis, Prometheus, Alertmanager and the exporters; the twin's Python dependencies from the
package index). podman's layer cache lives in its storage outside the git tree
(scripts/containers.sh), so a second run, or a fresh clone on the same machine, rebuilds
nothing but the twin's last layer when its source changed. A lock serialises builds across
processes; a failed build names its image and the last lines of its log, and leaves no build
container behind (--force-rm).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from codesync_load.errors import HarnessError
from codesync_load.stack.engine import Engine, last_lines
from codesync_load.stack.render import REPO_ROOT

CONTAINERFILES = REPO_ROOT / "containers"
BASE_IMAGE = "codesync-local/debian:bookworm"
APT_IMAGE = "codesync-local/debian-apt:bookworm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# image -> (Containerfile, build context); the order is the build order (the apt layer first).
IMAGES: dict[str, tuple[str, Path]] = {
    APT_IMAGE: ("debian-apt.Containerfile", CONTAINERFILES),
    "codesync-local/postgres:latest": ("postgres.Containerfile", CONTAINERFILES),
    "codesync-local/redis:latest": ("redis.Containerfile", CONTAINERFILES),
    "codesync-local/prometheus:latest": ("prometheus.Containerfile", CONTAINERFILES),
    "codesync-local/alertmanager:latest": ("alertmanager.Containerfile", CONTAINERFILES),
    "codesync-local/node-exporter:latest": ("node-exporter.Containerfile", CONTAINERFILES),
    "codesync-local/postgres-exporter:latest": ("postgres-exporter.Containerfile", CONTAINERFILES),
    "codesync-local/redis-exporter:latest": ("redis-exporter.Containerfile", CONTAINERFILES),
    "codesync-local/blackbox-exporter:latest": ("blackbox-exporter.Containerfile", CONTAINERFILES),
    "codesync-local/bugsink:latest": ("bugsink.Containerfile", CONTAINERFILES),
    "codesync-local/twin:latest": ("twin.Containerfile", REPO_ROOT),
}
CODESYNC_IMAGE = "codesync-local/codesync-backend:latest"
# A cold twin build on 2 busy cores takes ~10 min (its Python dependencies); a hang ends here.
BUILD_TIMEOUT = 1800.0


@dataclass
class Built:
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def debian_mirror() -> str:
    """The machine's own Debian mirror (first deb822 URIs or sources.list line), else deb.debian.org."""
    if os.environ.get("CODESYNC_DEBIAN_MIRROR"):
        return os.environ["CODESYNC_DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                words = line.split()
                if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                    return words[1]
                if words[:1] == ["deb"] and "security" not in line:
                    return next(word for word in words[1:] if "://" in word)
    return DEFAULT_MIRROR


@contextlib.contextmanager
def build_lock(engine: Engine) -> Iterator[None]:
    """One builder at a time per image cache (other runs wait, then find the images built)."""
    cache = engine.cache_dir or Path(tempfile.gettempdir())
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def image_exists(engine: Engine, image: str) -> bool:
    return engine.run("image", "exists", image, timeout=60).returncode == 0


def ensure_base(engine: Engine, log_dir: Path) -> str | None:
    """Make codesync-local/debian:bookworm with debootstrap unless it exists; a note or None."""
    if image_exists(engine, BASE_IMAGE):
        return None
    if not shutil.which("debootstrap"):
        raise HarnessError(f"image {BASE_IMAGE}: debootstrap is not installed; run scripts/containers.sh")
    cache = engine.cache_dir or Path(tempfile.gettempdir())
    log = log_dir / "debootstrap.log"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=cache, prefix="rootfs-") as rootfs:
        mirror = debian_mirror()
        with open(log, "w") as out:
            code = subprocess.call(
                ["debootstrap", "--variant=minbase", SUITE, rootfs, mirror], stdout=out, stderr=subprocess.STDOUT
            )
        if code != 0:
            raise HarnessError(
                f"image {BASE_IMAGE}: debootstrap from {mirror} failed (exit {code}): "
                f"{last_lines(log.read_text(errors='replace'))} (log: {log})"
            )
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        result = subprocess.run(
            ["podman", "import", "-", BASE_IMAGE],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            env=engine.environ(),
            check=False,
        )
        tar.wait()
        if result.returncode != 0 or tar.returncode != 0:
            raise HarnessError(f"image {BASE_IMAGE}: podman import failed: {last_lines(result.stderr)}")
    return f"built {BASE_IMAGE} with debootstrap from {mirror} in {time.monotonic() - started:.0f} s"


HOST_CA_IN_BUILD = "/run/codesync-host-ca.crt"


PIP_SETTINGS = {"index-url": "PIP_INDEX_URL", "extra-index-url": "PIP_EXTRA_INDEX_URL", "find-links": "PIP_FIND_LINKS"}


def host_pip_settings() -> dict[str, str]:
    """Where this machine's pip finds packages (`pip config list`, then PIP_* variables):
    {"PIP_EXTRA_INDEX_URL": "file:///opt/pypi/simple ...", ...}."""
    settings: dict[str, str] = {}
    result = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60, check=False
    )
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        variable = PIP_SETTINGS.get(key.rsplit(".", 1)[-1])
        if variable and value:
            settings[variable] = value.strip().strip("'\"")
    for variable in PIP_SETTINGS.values():
        if os.environ.get(variable):
            settings[variable] = os.environ[variable]
    return settings


def local_package_dirs(settings: dict[str, str]) -> list[Path]:
    """The folders on this machine that pip's settings point at (file:// indexes, find-links
    paths); an index's .../simple is mounted with its parent, where its links lead."""
    folders: list[Path] = []
    for variable, value in settings.items():
        for word in value.split():
            path = Path(urlsplit(word).path) if word.startswith("file://") else Path(word)
            if not path.is_absolute() or not path.exists():
                continue
            if variable != "PIP_FIND_LINKS" and path.name == "simple":
                path = path.parent
            if path not in folders:
                folders.append(path)
    return folders


def host_build_options() -> list[str]:
    """What a build borrows from this machine, so that it installs what the machine's own pip
    would: its CA bundle (a TLS-re-signing proxy between here and the package index needs it)
    and its package sources (indexes and wheel folders on disk install in seconds; the index
    through the proxy takes minutes). Passed as build-args the Containerfiles read and
    read-only mounts that exist only while RUN steps run; nothing of it stays in an image."""
    options = []
    bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():
        options += ["-v", f"{bundle.resolve()}:{HOST_CA_IN_BUILD}:ro", "--build-arg", f"HOST_CA={HOST_CA_IN_BUILD}"]
    settings = host_pip_settings()
    for folder in local_package_dirs(settings):
        options += ["-v", f"{folder}:{folder}:ro"]
    for variable, value in sorted(settings.items()):
        options += ["--build-arg", f"{variable}={value}"]
    return options


def project_requirements() -> str:
    """pyproject.toml's dependencies, space-separated (the twin image's REQUIREMENTS build-arg)."""
    import tomllib

    with open(REPO_ROOT / "pyproject.toml", "rb") as handle:
        return " ".join(tomllib.load(handle)["project"]["dependencies"])


def upstream_image_tag(service: str) -> str:
    """The tag of the image docker-compose.test.yml names for `service` ("2.6.2" for
    bugsink/bugsink:2.6.2): a local image built from PyPI installs that same version."""
    import yaml

    with open(REPO_ROOT / "docker-compose.test.yml") as handle:
        image = yaml.safe_load(handle)["services"][service]["image"]
    name, _, tag = image.rpartition(":")
    if not name or not tag or tag == "latest":
        raise HarnessError(f"docker-compose.test.yml: service {service}'s image {image!r} needs a version tag")
    return tag


def remove_build_leftovers(engine: Engine) -> list[str]:
    """Remove build containers an interrupted build left in storage (`podman ps --external`
    lists them, plain `ps` does not); called under the build lock, so none is in use."""
    managed = set(engine.run("ps", "-a", "-q", "--no-trunc").stdout.split())
    leftovers = []
    listing = engine.run("ps", "-a", "--external", "--no-trunc", "--format", "{{.ID}} {{.Names}}").stdout
    for line in listing.splitlines():
        cid, _, name = line.partition(" ")
        if cid and cid not in managed and name.endswith("-working-container"):
            leftovers.append(cid)
    if leftovers:
        engine.run("rm", "-f", *leftovers, timeout=120)
    return leftovers


def build_image(
    engine: Engine,
    image: str,
    containerfile: Path,
    context: Path,
    log_dir: Path,
    build_args: dict[str, str] | None = None,
) -> float:
    """`podman build` one image (layer cache on); seconds taken, or HarnessError with its log's tail."""
    log = log_dir / f"build-{image.split('/')[-1].split(':')[0]}.log"
    started = time.monotonic()
    argv = [
        engine.name,
        "build",
        "--layers",
        "--force-rm",
        "--network",
        "host",
        *host_build_options(),
        *(f"--build-arg={name}={value}" for name, value in (build_args or {}).items()),
        "-t",
        image,
        "-f",
        str(containerfile),
        str(context),
    ]
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=engine.environ())
        try:
            code = proc.wait(timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            stop_build(proc)
            raise HarnessError(
                f"image {image} ({containerfile.name}) did not build within {BUILD_TIMEOUT:g} s: "
                f"{last_lines(log.read_text(errors='replace'))} (log: {log})"
            ) from None
        except BaseException:
            stop_build(proc)
            raise
    if code != 0:
        raise HarnessError(
            f"image {image} ({containerfile.name}) failed to build (exit {code}): "
            f"{last_lines(log.read_text(errors='replace'))} (log: {log})"
        )
    return time.monotonic() - started


def stop_build(proc: subprocess.Popen) -> None:
    """Stop a running `podman build` so that it removes its own RUN container: SIGINT, then
    SIGKILL only if it does not exit (a killed build leaves the RUN step's process running,
    outside our process group, and its working container in storage)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ensure_images(engine: Engine, log_dir: Path, codesync_src: Path | None = None) -> Built:
    """Build (or find cached) every local image; with `codesync_src`, CodeSync's backend too."""
    if engine.name != "podman":
        raise HarnessError("local images are built with podman; with Docker run the upstream images")
    log_dir.mkdir(parents=True, exist_ok=True)
    built = Built()
    started = time.monotonic()
    with build_lock(engine):
        remove_build_leftovers(engine)
        note = ensure_base(engine, log_dir)
        if note:
            built.notes.append(note)
        images = dict(IMAGES)
        if codesync_src is not None:
            images[CODESYNC_IMAGE] = ("codesync.Containerfile", codesync_src)
        args = {
            "codesync-local/twin:latest": {"REQUIREMENTS": project_requirements()},
            "codesync-local/bugsink:latest": {"BUGSINK_VERSION": upstream_image_tag("bugsink")},
        }
        try:
            for image, (name, context) in images.items():
                seconds = build_image(engine, image, CONTAINERFILES / name, context, log_dir, args.get(image))
                built.notes.append(f"{image}: {seconds:.0f} s")
        finally:
            cleared = remove_build_leftovers(engine)
            if cleared:
                built.notes.append(f"removed {len(cleared)} build container(s) an interrupted build had left")
        # A changed twin source leaves its previous image dangling; drop those, keep the layer cache.
        engine.run("image", "prune", "-f", timeout=120)
    built.seconds = time.monotonic() - started
    return built
