"""The `harness` webhook receiver: records every Alertmanager delivery as one JSON line.

    $ python -m codesync_load.stack.webhook --port 40300 --out run/alerts.jsonl
    >>> read_deliveries(Path("run/alerts.jsonl"))[0]["payload"]["receiver"]
    'harness'

Alertmanager routes alerts to receivers by name; a test can only prove the routing if the
receiver that got an alert says so. This receiver is a child process (it outlives `stack up`
like every other part), needs only the standard library, answers `GET /-/ready`, and appends
`{"received_at", "path", "payload"}` per POST, flushed at once so readers never wait.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def read_deliveries(path: Path) -> list[dict]:
    """Every delivery recorded so far (a line being written is skipped until complete)."""
    out = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def alerts_delivered(path: Path, alertname: str, status: str = "firing") -> list[tuple[str, dict]]:
    """(receiver, alert) for each delivered alert named `alertname` with `status`."""
    found = []
    for delivery in read_deliveries(path):
        payload = delivery.get("payload") or {}
        for alert in payload.get("alerts") or []:
            if alert.get("labels", {}).get("alertname") == alertname and alert.get("status") == status:
                found.append((payload.get("receiver", ""), alert))
    return found


def make_handler(out: Path) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"ok\n" if self.path in ("/-/ready", "/-/healthy") else b"POST Alertmanager webhooks here\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = {"unparsed": raw.decode(errors="replace")}
            line = json.dumps({"received_at": time.time(), "path": self.path, "payload": payload})
            with lock, out.open("a") as handle:
                handle.write(line + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Record Alertmanager webhook deliveries as JSON lines.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.touch()
    try:
        server = ThreadingHTTPServer((args.host, args.port), make_handler(args.out))
    except OSError as err:
        print(f"webhook receiver: cannot listen on {args.host}:{args.port} ({err.strerror})", flush=True)
        return 2
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
