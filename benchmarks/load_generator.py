"""Benchmark the load generator itself: Locust (one process) against a raw asyncio client.

    $ .venv/bin/python benchmarks/load_generator.py                # full run, upstream + twin
    $ .venv/bin/python benchmarks/load_generator.py --quick        # smoke run, ~50 s on 2 cores
    $ .venv/bin/python benchmarks/load_generator.py --targets twin --idle 2000 --duration 10

Starts the targets (the upstream JavaScript y-websocket server from npm and the twin, each a
child process stopped by PID, on Ctrl-C too) and measures, per target, in one run:

1. Yjs throughput: `--editors` editors, `--per-doc` to a document, each inserting one character
   near the start every `--interval` s (appending would measure pycrdt, see the field notes;
   so would deleting: `--max-length` caps the text by deleting a character per keystroke, and
   the tombstones that leaves where everyone types make every later keystroke slower);
   updates sent/s and the others' updates applied/s, from the clients' own counters, for the
   raw asyncio client and for ONE headless Locust process: LeanEditorUser (the connection as
   loadtests opens it: latency registry, ledger recorder and Locust reporting), the same bare
   (what that bookkeeping costs) and the project's YjsClient (what the users ran before).
2. Idle connections: `--idle` synced idle connections in one process; RSS delta per connection
   (VmRSS before/after) and how many were still held after `--hold` s (>= 30 s lets the
   server's ping round come and go). Locust holds them three ways: LeanViewerUser (one user
   per connection), LeanViewerPoolUser (up to 100 connections per user) and, for reference,
   the project's YjsClient (one user per connection, a fifth of the count: it costs ~60 KB).
   The soft fd limit is raised to the hard limit for this process and its children (one
   descriptor per connection on both sides; 10,000 idle needs `ulimit -Hn` >= ~10,300);
   connections are spread over 127.x.y.z source addresses, 90 per address, below the twin's
   100 Yjs connections per minute per IP (the upstream server has no limit).
3. REST (twin only): GET /health requests/s of the CodeSync RestClient on Locust's FastHttp
   transport against a plain FastHttpUser, `--rest-users` users each, no wait.

Prints a table of ratios (Locust / baseline, same run) against the issue's targets and writes
benchmarks/results/<timestamp>.json and .md (the .md is what RESULTS.md quotes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _report import build_rows, machine_info, markdown, text_table  # noqa: E402
from _targets import KNOWN, Target, raise_fd_limit, running_targets  # noqa: E402

from codesync_load.errors import HarnessError  # noqa: E402
from codesync_load.processes import ManagedProcess  # noqa: E402

PER_ADDRESS = 90  # below the twin's (and CodeSync's) 100 Yjs connections per minute per IP
RESULTS_DIR = HERE / "results"


class Phases:
    """Runs one measure in a child process and returns its JSON (or {"error": ...})."""

    def __init__(self, work_dir: Path, run_id: str, settings: argparse.Namespace) -> None:
        self.work_dir = work_dir
        self.run_id = run_id
        self.s = settings
        self._source_base = 9
        self._count = 0

    def _next(self) -> tuple[int, str]:
        self._count += 1
        self._source_base += 1
        if self._source_base > 254:
            raise HarnessError("too many phases for distinct 127.x source ranges; run fewer targets at a time")
        return self._source_base, f"bench{self.run_id}p{self._count}"

    def _env(self, cfg: dict[str, Any] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            env.pop(proxy, None)
        if cfg is not None:
            env["CODESYNC_BENCH"] = json.dumps(cfg)
        return env

    def _run(self, argv: list[str], name: str, out: Path, timeout: float, env: dict[str, str]) -> dict[str, Any]:
        log = self.work_dir / f"{name}.log"
        proc = ManagedProcess.start(argv, name=name, log_path=log, env=env, cwd=ROOT)
        try:
            deadline = time.monotonic() + timeout
            while proc.alive() and time.monotonic() < deadline:
                if out.exists() and out.stat().st_size:
                    # the result is written; give Locust a moment to stop its users, then stop it
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.popen.wait(timeout=15)
                    break
                time.sleep(0.1)
        finally:
            proc.stop(grace=5)
        if out.exists() and out.stat().st_size:
            return json.loads(out.read_text())
        return {"error": f"{name} wrote no result within {timeout:g} s: {proc.log_tail(3)} (log {log})"}

    def raw(self, mode: str, url: str, cfg: dict[str, Any], timeout: float) -> dict[str, Any]:
        base, prefix = self._next()
        out = self.work_dir / f"{prefix}-raw-{mode}.json"
        cfg = {**cfg, "mode": mode, "url": url, "doc_prefix": prefix, "source_base": base, "per_address": PER_ADDRESS}
        argv = [sys.executable, str(HERE / "_raw_client.py"), json.dumps(cfg), str(out)]
        return self._run(argv, f"{prefix}-raw-{mode}", out, timeout, self._env())

    def locust(
        self, user_class: str, url: str, users: int, rate: float, cfg: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        base, prefix = self._next()
        out = self.work_dir / f"{prefix}-{user_class}.json"
        cfg = {**cfg, "out": str(out), "doc_prefix": prefix, "source_base": base, "per_address": PER_ADDRESS}
        argv = [
            sys.executable, "-m", "locust", "-f", str(HERE / "_locust_bench.py"), "--headless",
            "-u", str(users), "-r", f"{rate:g}", "-t", f"{int(timeout)}s", "--host", url,
            "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "2", "--exit-code-on-error", "0",
            user_class,
        ]  # fmt: skip
        return self._run(argv, f"{prefix}-{user_class}", out, timeout + 20, self._env(cfg))

    # -- the measures --------------------------------------------------------------------------

    def throughput(self, target: Target) -> dict[str, Any]:
        s = self.s
        cfg = {"editors": s.editors, "per_doc": s.per_doc, "interval": s.interval, "warmup": s.warmup,
               "duration": s.duration, "expected": s.editors, "max_length": s.max_length}  # fmt: skip
        limit = s.warmup + s.duration + 60
        result = {"raw": self.raw("throughput", target.yjs_url, cfg, limit)}
        rate = max(10.0, s.editors / 2)
        result["locust_lean"] = self.locust(
            "LeanEditorUser", target.yjs_url, s.editors, rate, {**cfg, "mode": "throughput"}, limit
        )
        result["locust_lean_bare"] = self.locust(
            "LeanBareEditorUser", target.yjs_url, s.editors, rate, {**cfg, "mode": "throughput"}, limit
        )
        if not s.skip_yjsclient:
            result["locust_yjsclient"] = self.locust(
                "YjsClientEditorUser", target.yjs_url, s.editors, rate, {**cfg, "mode": "throughput"}, limit
            )
        return result

    def idle(self, target: Target) -> dict[str, Any]:
        s = self.s
        cfg = {"connections": s.idle, "per_doc": s.per_doc, "hold": s.hold, "expected": s.idle}
        limit = s.hold + 60 + s.idle / 50
        result = {"raw": self.raw("idle", target.yjs_url, cfg, limit)}
        per_user = {**cfg, "mode": "idle", "ready_timeout": limit - s.hold - 10}
        result["locust_lean_users"] = self.locust(
            "LeanViewerUser", target.yjs_url, s.idle, max(10.0, s.idle / s.idle_spawn), per_user, limit
        )
        pool = next(size for size in range(min(100, s.idle), 0, -1) if s.idle % size == 0)
        pooled = {**cfg, "mode": "idle", "pool": pool, "connect_concurrency": 20, "ready_timeout": limit - s.hold - 10}
        users = s.idle // pool
        result["locust_lean"] = self.locust(
            "LeanViewerPoolUser", target.yjs_url, users, max(1.0, users / 10), pooled, limit
        )
        if not s.skip_yjsclient:
            count = max(10, s.idle // 5)
            small = {**cfg, "mode": "idle", "connections": count, "expected": count,
                     "ready_timeout": limit - s.hold - 10}  # fmt: skip
            result["locust_yjsclient"] = self.locust(
                "YjsClientViewerUser", target.yjs_url, count, max(10.0, count / 10), small, limit
            )
        return result

    def rest(self, target: Target) -> dict[str, Any]:
        s = self.s
        assert target.api_url is not None
        cfg = {"mode": "rest", "warmup": s.warmup, "duration": s.duration, "expected": s.rest_users}
        limit = s.warmup + s.duration + 60
        rate = max(1.0, float(s.rest_users))
        return {
            "plain": self.locust("PlainHealthUser", target.api_url, s.rest_users, rate, cfg, limit),
            "codesync": self.locust("CodeSyncHealthUser", target.api_url, s.rest_users, rate, cfg, limit),
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few users, short phases")
    parser.add_argument("--targets", default="upstream,twin", help="comma-separated: upstream, twin")
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per throughput/REST phase")
    parser.add_argument("--warmup", type=float, default=None, help="seconds between ready and measuring")
    parser.add_argument("--editors", type=int, default=None, help="Yjs editors (default 100; quick 10)")
    parser.add_argument("--per-doc", type=int, default=5, help="editors (and idle connections) per document")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between one editor's keystrokes")
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="past this many characters a keystroke also deletes one (default: never; insert only, see RESULTS.md)",
    )
    parser.add_argument("--idle", type=int, default=None, help="idle connections per process (default 10000)")
    parser.add_argument("--hold", type=float, default=None, help="seconds the idle connections are held (default 35)")
    parser.add_argument("--rest-users", type=int, default=None, help="REST users per process (default 20)")
    parser.add_argument("--skip-yjsclient", action="store_true", help="skip the YjsClient reference rows")
    parser.add_argument("--out", type=Path, default=None, help="result JSON path (default results/<timestamp>.json)")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "duration": 1.0 if quick else 20.0,
        "warmup": 0.5 if quick else 2.0,
        "editors": 10 if quick else 100,
        "idle": 100 if quick else 10_000,
        "hold": 0.5 if quick else 35.0,
        "rest_users": 5 if quick else 20,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    # Seconds over which the one-user-per-connection idle users spawn (at least 10 a second):
    # 10,000 in 20 s; the quick run's 100 in 2 s, not the 10 s that floor alone gives them.
    args.idle_spawn = 2.0 if quick else 20.0
    args.target_list = [t.strip() for t in args.targets.split(",") if t.strip()]
    for name in args.target_list:
        if name not in KNOWN:
            raise HarnessError(f"--targets: unknown target {name!r}; choose from {', '.join(KNOWN)}")
    for name in ("duration", "interval", "hold"):
        if getattr(args, name) <= 0:
            raise HarnessError(f"--{name} must be a positive number of seconds")
    if args.max_length is not None and args.max_length < 1:
        raise HarnessError("--max-length must be at least 1 character (or left out: insert only)")
    for name in ("editors", "per_doc", "idle", "rest_users"):
        if getattr(args, name) < 1:
            raise HarnessError(f"--{name.replace('_', '-')} must be at least 1")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    fd_limit = raise_fd_limit(args.idle + 1024)
    if fd_limit < args.idle + 256:
        raise HarnessError(
            f"--idle {args.idle} needs about {args.idle + 256} file descriptors but the hard limit is {fd_limit}; "
            "raise it (ulimit -Hn, /etc/security/limits.conf) or lower --idle"
        )
    machine = machine_info()
    config = {
        "editors": args.editors, "per_doc": args.per_doc, "interval_s": args.interval, "max_length": args.max_length,
        "duration_s": args.duration,
        "warmup_s": args.warmup, "idle": args.idle, "idle_spawn_s": args.idle_spawn, "hold_s": args.hold,
        "rest_users": args.rest_users, "fd_limit": fd_limit, "quick": args.quick,
    }  # fmt: skip
    run_id = uuid.uuid4().hex[:8]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="codesync-bench-") as tmp:
        work = Path(tmp)
        with running_targets(args.target_list, work) as targets:
            phases = Phases(work, run_id, args)
            for name, target in targets.items():
                print(f"[{name}] pid {target.pid} {target.yjs_url}", flush=True)
            for name, target in targets.items():
                print(f"[{name}] Yjs throughput ...", flush=True)
                measures: dict[str, Any] = {"throughput": phases.throughput(target)}
                print(f"[{name}] idle connections ...", flush=True)
                measures["idle"] = phases.idle(target)
                if target.api_url is not None:
                    print(f"[{name}] REST ...", flush=True)
                    measures["rest"] = phases.rest(target)
                results[name] = measures
    rows = build_rows(results, idle_goal=10_000)
    return {"machine": machine, "config": config, "results": results, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        record = run(args)
    except HarnessError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: targets and clients stopped", file=sys.stderr)
        return 130
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or RESULTS_DIR / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(record["rows"], record["machine"], record["config"]))
    print(text_table(record["rows"]))
    print(f"\nwritten: {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
