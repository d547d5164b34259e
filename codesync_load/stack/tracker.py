"""Bugsink, the stack's error tracker: a real Sentry-protocol receiver with an API to read events.

    >>> tracker = TrackerSpec.new(run_dir / "tracker", port=41234)
    >>> tracker.dsn                  # known before Bugsink is up: handed to the twin as SENTRY_DSN
    'http://0f3c...@127.0.0.1:41234/1'
    >>> proc = start_tracker(tracker, log_path=run_dir / "logs" / "tracker.log")
    >>> proc.wait_until(lambda: tracker_ready(tracker.url), timeout=60, what="answering")

Why Bugsink: it speaks the ingestion protocol the official Sentry SDKs use (envelope and store
endpoints, DSN keys), keeps everything in SQLite under the stack's run directory, and lists
issues and events through a token API, so the harness reads what a real tracker stored rather
than what a stand-in of ours decided to keep.

One child process per tracker, stopped by PID: `python -m codesync_load.stack.tracker` migrates
the SQLite databases, creates the user, team, project (with the DSN key chosen here) and a
full-access API token, then replaces itself (exec, same PID) with gunicorn serving Bugsink on
loopback. The DSN and the token are chosen by the harness, so the stack can hand the DSN to the
twin at once and start Bugsink in parallel with the other components.

Settings that differ from Bugsink's defaults, and why: tasks run eagerly (no snappea worker
process: an event is digested inside its ingest request, so it is listed as soon as it was
accepted); no phoning home; event quotas raised far above any load run (Bugsink's defaults of
1,000 per 5 minutes would drop events the check must count, and the SDK would then obey the 429).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesync_load import __version__
from codesync_load.errors import HarnessError
from codesync_load.processes import ManagedProcess
from codesync_load.stack.ports import HOST

PROJECT_NAME = "codesync"
# The release a twin the harness starts reports with (SENTRY_RELEASE), which the tracker check
# then expects on every event; a CodeSync the harness did not build names its own, if any.
TWIN_RELEASE = f"codesync-twin@{__version__}"
# Far above any run here; Bugsink's quotas exist to protect a shared instance, not this one.
_QUOTA = 1_000_000_000
SETTINGS_MODULE = "bugsink_conf"


@dataclass(frozen=True)
class TrackerSpec:
    """Where one Bugsink lives and the credentials the harness chose for it."""

    data_dir: Path
    port: int
    key: str  # the DSN's public key (Bugsink's project.sentry_key)
    token: str  # the API token (40 hex digits, Bugsink's format)
    project_id: int = 1  # the first project of a fresh database
    # host:port CodeSync sends events to, when it differs from where the harness reads
    # (containers on a compose network: bugsink:8000); None: the same loopback address.
    dsn_netloc: str | None = None

    @classmethod
    def new(cls, data_dir: Path, port: int, dsn_netloc: str | None = None) -> TrackerSpec:
        return cls(Path(data_dir), port, uuid.uuid4().hex, secrets.token_hex(20), dsn_netloc=dsn_netloc)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def dsn(self) -> str:
        return f"http://{self.key}@{self.dsn_netloc or f'{HOST}:{self.port}'}/{self.project_id}"

    def record(self) -> dict[str, Any]:
        """What the state file keeps (the verifier reads events with it)."""
        return {"url": self.url, "dsn": self.dsn, "token": self.token, "project_id": self.project_id}


def settings_text(spec: TrackerSpec) -> str:
    """Bugsink's Django settings for this tracker (written as bugsink_conf.py in its data dir)."""
    data = spec.data_dir.resolve()
    bugsink = {
        "BASE_URL": spec.url,
        "SINGLE_USER": True,
        "SINGLE_TEAM": True,
        "USER_REGISTRATION": "CB_NOBODY",
        "PHONEHOME": False,
        "INGEST_STORE_BASE_DIR": str(data / "ingestion"),
        **{
            f"MAX_EVENTS_{scope}PER_{period}": _QUOTA
            for scope in ("", "PER_PROJECT_")
            for period in ("5_MINUTES", "HOUR", "MONTH")
        },
    }
    return (
        "# Written by codesync_load.stack.tracker for one stack run; see that module for why.\n"
        "from bugsink.settings.default import *  # noqa\n\n"
        f"SECRET_KEY = {secrets.token_urlsafe(50)!r}\n"
        f"DATABASES['default']['NAME'] = {str(data / 'db.sqlite3')!r}\n"
        f"DATABASES['snappea']['NAME'] = {str(data / 'snappea.sqlite3')!r}\n"
        "TIME_ZONE = 'UTC'\n"
        "SNAPPEA = {'TASK_ALWAYS_EAGER': True}\n"
        "EMAIL_BACKEND = 'django.core.mail.backends.dummy.EmailBackend'\n"
        f"ALLOWED_HOSTS = [{HOST!r}, 'localhost']\n"
        f"BUGSINK = {bugsink!r}\n"
    )


def start_tracker(spec: TrackerSpec, log_path: Path | None) -> ManagedProcess:
    """Spawn the set-up + server child (returns at once; wait with `tracker_ready`)."""
    spec.data_dir.mkdir(parents=True, exist_ok=True)
    (spec.data_dir / f"{SETTINGS_MODULE}.py").write_text(settings_text(spec))
    argv = [sys.executable, "-m", "codesync_load.stack.tracker", "--dir", str(spec.data_dir.resolve())]
    argv += ["--port", str(spec.port), "--key", spec.key, "--token", spec.token]
    return ManagedProcess.start(argv, name="tracker", log_path=log_path, env=_env(spec.data_dir))


def launch_tracker(
    run_dir: Path, port: int, log_path: Path, release: str | None
) -> tuple[ManagedProcess, dict[str, Any], dict[str, Any]]:
    """Start a stack's Bugsink under run_dir/tracker: (process, the state file's "tracker"
    record, its component entry). Returns at once; `wait_tracker` waits for it."""
    spec = TrackerSpec.new(run_dir / "tracker", port)
    proc = start_tracker(spec, log_path)
    component = {"url": spec.url, "pid": proc.pid, "expected": expected_cmdline(spec)}
    return proc, {**spec.record(), "release": release}, component


def wait_tracker(proc: ManagedProcess, record: dict[str, Any]) -> None:
    url = record["url"]
    proc.wait_until(lambda: tracker_ready(url), timeout=120.0, what=f"answering at {url}/health/ready")


def expected_cmdline(spec: TrackerSpec) -> str:
    """A string in the child's command line before and after its exec (stop_pid's guard)."""
    return str(spec.data_dir.resolve())


def _env(data_dir: Path) -> dict[str, str]:
    path = [str(Path(data_dir).resolve()), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "PYTHONPATH": os.pathsep.join(p for p in path if p),
    }


def tracker_shell(data_dir: Path, code: str, timeout: float = 60.0) -> str:
    """Run Python `code` in a local Bugsink's Django shell (its settings, its database), as
    `bugsink-manage shell -c` does in the container; its stdout. Raises HarnessError on failure."""
    result = subprocess.run(
        [sys.executable, "-m", "django", "shell", "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(data_dir).resolve(),
        env=_env(data_dir),
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"Bugsink's shell in {data_dir} failed: {last}")
    return result.stdout


def tracker_ready(url: str, timeout: float = 1.0) -> bool:
    """Bugsink's own readiness route answers 200 (database reachable)."""
    from codesync_load.stack import promapi

    return promapi.get(url + "/health/ready", timeout)[0] == 200


# ----- a Bugsink container: provisioned through its own manage command ----------------------------

PROVISIONED = "codesync-load provisioned "


def provision_script(spec: TrackerSpec) -> str:
    """Python for `bugsink-manage shell -c` in a Bugsink container (its image has no
    codesync_load): tracker_provision's source, then one call that prints PROVISIONED + JSON."""
    import inspect

    from codesync_load.stack import tracker_provision

    call = f"provision({spec.key!r}, {spec.token!r}, {PROJECT_NAME!r}, {_QUOTA!r})"
    return f"{inspect.getsource(tracker_provision)}\nimport json\nprint({PROVISIONED!r} + json.dumps({call}))\n"


def provisioned(spec: TrackerSpec, output: str) -> str | None:
    """None when the script's output shows the project with the spec's key and id, else why not."""
    for line in output.splitlines():
        if line.startswith(PROVISIONED):
            result = json.loads(line[len(PROVISIONED) :])
            if result.get("project_id") != spec.project_id or spec.key not in str(result.get("dsn")):
                made = f"project {result.get('project_id')} ({result.get('dsn')})"
                return f"Bugsink made {made}, not project {spec.project_id} with the harness's key"
            return None
    return "no project was created: " + (" / ".join(output.strip().splitlines()[-3:]) or "(no output)")


# ----- the child: set up, then become gunicorn ----------------------------------------------------


DATABASES = ("db.sqlite3", "snappea.sqlite3")


def template_dir() -> Path:
    """Where freshly migrated, empty databases are kept for the next start (outside the repo).

    Why: migrating Bugsink's databases from nothing costs ~5 s of CPU on every stack start (and
    tests start many stacks on two shared cores); a copy of the migrated files plus a `migrate`
    that finds nothing to do costs ~1.5 s. Keyed by the Bugsink and Django versions, whose
    migrations define the schema."""
    from importlib.metadata import version

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "codesync-load"
    return base / f"bugsink-{version('bugsink')}-django-{version('django')}"


def _copy_sqlite(src: Path, dst: Path) -> None:
    """A consistent copy through SQLite's backup API (never a half-written file)."""
    import sqlite3

    source, target = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def _save_template(data_dir: Path) -> None:
    """Keep the just-migrated databases as the template (atomically: concurrent starts race)."""
    import shutil
    import tempfile

    final = template_dir()
    if final.exists():
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=final.parent))
    try:
        for name in DATABASES:
            _copy_sqlite(data_dir / name, staging / name)
        staging.rename(final)
    except OSError:
        pass  # another start saved it first, or the cache is not writable: only speed is lost
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _set_up(key: str, token: str) -> dict[str, Any]:
    """Migrate both databases (from the template when there is one) and create user, team,
    project and token (idempotent on restart)."""
    import django
    from django.core.management import call_command
    from django.db import connections

    data_dir = Path.cwd()
    template = template_dir()
    fresh = not all((data_dir / name).exists() for name in DATABASES)
    if fresh and all((template / name).exists() for name in DATABASES):
        for name in DATABASES:
            _copy_sqlite(template / name, data_dir / name)
        fresh = False
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("migrate", "snappea", database="snappea", verbosity=0, interactive=False)
    if fresh:
        connections.close_all()
        _save_template(data_dir)

    from codesync_load.stack.tracker_provision import provision

    return provision(key, token, PROJECT_NAME, _QUOTA)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m codesync_load.stack.tracker")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args(argv)
    os.chdir(args.dir)
    sys.path.insert(0, args.dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    print("tracker set-up:", json.dumps(_set_up(args.key, args.token)), flush=True)
    gunicorn = [sys.executable, "-m", "gunicorn", "--chdir", args.dir, "--bind", f"{HOST}:{args.port}"]
    gunicorn += ["--workers", "1", "--threads", "4", "--access-logfile", "-", "bugsink.wsgi"]
    os.execv(sys.executable, gunicorn)


if __name__ == "__main__":
    main()
