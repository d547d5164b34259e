"""The baseline: a raw asyncio websockets + pycrdt client doing the benchmark's Yjs work.

    $ python benchmarks/_raw_client.py '{"mode": "throughput", "url": "ws://127.0.0.1:4001", ...}' out.json

Run by load_generator.py as its own process (one process, like one Locust process), so that
its CPU and its RSS are its own. Two modes, the same work the Locust side does:

- `throughput`: `editors` editors, `per_doc` to a document, each inserting one character near
  the start of the text every `interval` s (the schedule is absolute, so a saturated client
  simply runs flat out); counts updates sent and the others' updates applied during
  `duration` s, after everyone is synced and a `warmup`.
- `idle`: `connections` synced connections that only answer pings and apply what arrives;
  reports VmRSS before and after (gc collected), and how many are still open after `hold` s.

No websockets keepalive pings (the server pings), no deflate, no proxy: the options the
project's clients use, so the baseline pays for the same protocol and nothing else.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pycrdt
from websockets.asyncio.client import ClientConnection, connect

from scenarios.clients import yprotocol as yp

TEXT_NAME = "codesync"
CONNECT_CONCURRENCY = 100


def rss_kb() -> int:
    """VmRSS of this process in kB (what the Locust side reads too)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def source_address(base: str | None, index: int, per_address: int) -> str | None:
    """Spread connections over 127.<base>.x.y, `per_address` each (the twin limits per IP)."""
    if base is None:
        return None
    slot = index // per_address
    return f"127.{base}.{slot // 254}.{slot % 254 + 1}"


class RawEditor:
    """One connection, one pycrdt document, its reader task and (for editors) its typing task."""

    def __init__(self, url: str, document: str, source: str | None) -> None:
        self.url = url.rstrip("/") + "/" + quote(document, safe="/:@!$&'()*+,;=-._~")
        self.source = source
        self.doc = pycrdt.Doc()
        self.text = self.doc.get(TEXT_NAME, type=pycrdt.Text)
        self.client_id = self.doc.client_id
        self.ws: ClientConnection | None = None
        self.synced = asyncio.Event()
        self.server_step1 = False
        self.sent = 0
        self.applied = 0
        self.echoes = 0
        self.failure: str | None = None
        self.reader: asyncio.Task | None = None

    async def open(self) -> None:
        options: dict[str, Any] = {
            "compression": None,
            "ping_interval": None,
            "max_size": 64 * 1024 * 1024,
            "proxy": None,
            "open_timeout": 30,
        }
        if self.source:
            options["local_addr"] = (self.source, 0)
        self.ws = await connect(self.url, **options)
        self.reader = asyncio.create_task(self.read())
        await asyncio.wait_for(self.synced.wait(), 30)

    async def read(self) -> None:
        assert self.ws is not None
        try:
            async for message in self.ws:
                kind, payload = yp.decode_frame(message)  # type: ignore[arg-type]
                if kind == "update":
                    blocks, author = yp.update_authors(payload)
                    if blocks == 1 and author == self.client_id:
                        self.echoes += 1
                    else:
                        self.doc.apply_update(payload)
                        self.applied += 1
                elif kind == "sync_step1":
                    await self.ws.send(yp.sync_step2(self.doc.get_update(payload)))
                    if not self.server_step1:
                        self.server_step1 = True
                        await self.ws.send(yp.sync_step1(self.doc.get_state()))
                elif kind == "sync_step2":
                    self.doc.apply_update(payload)
                    if self.server_step1:
                        self.synced.set()
        except Exception as err:  # reported in the JSON, counted as a lost connection
            self.failure = f"{type(err).__name__}: {err}"
        if self.failure is None:
            self.failure = "closed by the server"

    async def type_forever(
        self, interval: float, rng: random.Random, window: int = 16, max_length: int | None = None
    ) -> None:
        """One keystroke near the start every `interval` s, on an absolute schedule."""
        assert self.ws is not None
        due = time.perf_counter()
        while True:
            size = len(self.text)
            position = rng.randint(0, min(size, window))
            char = rng.choice("abcdefghijklmnopqrstuvwxyz ")
            before = self.doc.get_state()
            with self.doc.transaction():
                if max_length is not None and size >= max_length:
                    position = min(position, size - 1)
                    del self.text[position : position + 1]
                self.text.insert(position, char)
            await self.ws.send(yp.update_frame(self.doc.get_update(before)))
            self.sent += 1
            due += interval
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()


async def open_all(editors: list[RawEditor]) -> list[str]:
    """Open and sync everyone, CONNECT_CONCURRENCY at a time; returns the failures."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    failures: list[str] = []

    async def one(editor: RawEditor) -> None:
        async with gate:
            try:
                await editor.open()
            except Exception as err:
                failures.append(f"{type(err).__name__}: {err}")

    await asyncio.gather(*(one(e) for e in editors))
    return failures


def totals(editors: list[RawEditor]) -> dict[str, int]:
    return {
        "sent": sum(e.sent for e in editors),
        "applied": sum(e.applied for e in editors),
        "echoes": sum(e.echoes for e in editors),
    }


async def throughput(cfg: dict[str, Any]) -> dict[str, Any]:
    editors = [
        RawEditor(
            cfg["url"],
            f"{cfg['doc_prefix']}-{i // cfg['per_doc']}",
            source_address(cfg.get("source_base"), i, cfg["per_address"]),
        )
        for i in range(cfg["editors"])
    ]
    failures = await open_all(editors)
    if failures:
        return {"error": f"{len(failures)} of {len(editors)} editors failed to sync: {failures[0]}"}
    rng = random.Random(cfg.get("seed", 1))
    cap = cfg.get("max_length")
    typing = [
        asyncio.create_task(e.type_forever(cfg["interval"], random.Random(rng.random()), max_length=cap))
        for e in editors
    ]
    await asyncio.sleep(cfg["warmup"])
    start, cpu0, t0 = totals(editors), time.process_time(), time.perf_counter()
    await asyncio.sleep(cfg["duration"])
    end, cpu1, t1 = totals(editors), time.process_time(), time.perf_counter()
    for task in typing:
        task.cancel()
    lost = sum(1 for e in editors if e.failure is not None)
    await asyncio.gather(*(e.close() for e in editors), return_exceptions=True)
    seconds = t1 - t0
    return {
        "editors": len(editors),
        "seconds": seconds,
        "sent": end["sent"] - start["sent"],
        "applied": end["applied"] - start["applied"],
        "echoes": end["echoes"] - start["echoes"],
        "sent_per_s": (end["sent"] - start["sent"]) / seconds,
        "applied_per_s": (end["applied"] - start["applied"]) / seconds,
        "cpu_share": (cpu1 - cpu0) / seconds,
        "lost": lost,
    }


async def idle(cfg: dict[str, Any]) -> dict[str, Any]:
    gc.collect()
    before = rss_kb()
    editors = [
        RawEditor(
            cfg["url"],
            f"{cfg['doc_prefix']}-{i // cfg['per_doc']}",
            source_address(cfg.get("source_base"), i, cfg["per_address"]),
        )
        for i in range(cfg["connections"])
    ]
    failures = await open_all(editors)
    synced = sum(1 for e in editors if e.synced.is_set())
    gc.collect()
    after = rss_kb()
    await asyncio.sleep(cfg["hold"])
    held = sum(1 for e in editors if e.synced.is_set() and e.failure is None)
    await asyncio.gather(*(e.close() for e in editors), return_exceptions=True)
    return {
        "requested": len(editors),
        "synced": synced,
        "held": held,
        "rss_before_kb": before,
        "rss_after_kb": after,
        "kb_per_connection": (after - before) / max(synced, 1),
        "first_failure": failures[0] if failures else None,
    }


def main(argv: list[str]) -> int:
    cfg = json.loads(argv[1])
    out = Path(argv[2])
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    runner = {"throughput": throughput, "idle": idle}[cfg["mode"]]
    result = asyncio.run(runner(cfg))
    partial = out.with_suffix(".partial")
    partial.write_text(json.dumps(result))
    partial.replace(out)  # the driver polls for `out`: it must appear whole
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
