"""The load generator's own CPU and memory, sampled while Locust runs, kept in the run directory.

    >>> sampler = GeneratorSampler(child.pid, run_dir / GENERATOR_FILE).start()
    >>> ...                                   # the load runs
    >>> sampler.stop()                        # writes generator.csv: t, cpu_percent, rss_bytes, processes

Why: a load generator at a full core measures itself, not the server. The run report draws
this beside the target's CPU, and `codesync-load capacity` leaves out of its fit every step
where the generator was saturated, so a weak load machine is never reported as a weak server.
Locust's own CPU warning only goes to its log; this keeps the figure itself, per second,
summed over the Locust process and its workers (`--processes`), as a share of one core.
"""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import psutil

GENERATOR_FILE = "generator.csv"
INTERVAL_S = 1.0


class GeneratorSampler:
    """A daemon thread sampling one process tree's CPU (% of one core) and RSS every INTERVAL_S."""

    def __init__(self, pid: int, path: Path, interval: float = INTERVAL_S) -> None:
        self.pid = pid
        self.path = Path(path)
        self.interval = interval
        self.rows: list[tuple[float, float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="generator-cpu", daemon=True)

    def start(self) -> GeneratorSampler:
        self._thread.start()
        return self

    def _tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.pid)
        return [root, *root.children(recursive=True)]

    def _loop(self) -> None:
        last: dict[int, float] = {}
        last_t = time.monotonic()
        while not self._stop.wait(self.interval):
            try:
                procs = self._tree()
            except psutil.Error:
                return  # the child is gone: nothing more to sample
            now = time.monotonic()
            cpu_total = 0.0
            rss = 0
            current: dict[int, float] = {}
            for proc in procs:
                try:
                    times = proc.cpu_times()
                    used = times.user + times.system
                    rss += proc.memory_info().rss
                except psutil.Error:
                    continue
                current[proc.pid] = used
                if proc.pid in last:
                    cpu_total += max(0.0, used - last[proc.pid])
            if last:
                self.rows.append((time.time(), 100.0 * cpu_total / max(now - last_t, 1e-6), rss, len(current)))
            last, last_t = current, now

    def stop(self) -> Path:
        """Stop sampling and write the CSV (also when no sample was taken: a header only)."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        with self.path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["t", "cpu_percent", "rss_bytes", "processes"])
            for t, cpu, rss, n in self.rows:
                writer.writerow([f"{t:.3f}", f"{cpu:.1f}", rss, n])
        return self.path
