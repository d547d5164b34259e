"""What a target really exports: metric names and their label names, per scrape job.

    >>> catalog = ExportedSeries.from_prometheus(prom, start, end)
    >>> catalog = ExportedSeries.from_scrapes({"codesync-backend": ("http://127.0.0.1:4000/metrics", token)})
    >>> catalog.has("codesync_http_requests_total", jobs={"codesync-backend"})
    True
    >>> catalog.labels("codesync_http_requests_total")
    {'instance', 'job', 'method', 'route', 'status_code'}

A rule or panel on a series that never existed returns nothing and can never fire, so the
static checks hold every selector against this catalog rather than against a list of names
someone wrote down. It is read from Prometheus (/api/v1/series over the load window: what
was really scraped, exporters included) or, without a Prometheus, by scraping the targets'
/metrics pages directly. Series Prometheus makes itself for every target (`up`,
`scrape_*`) and the outputs of recording rules are added, since rules may read them too.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from codesync_load.errors import HarnessError

# Series Prometheus writes for every scrape target.
SYNTHETIC_PER_TARGET = (
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
)
TARGET_LABELS = frozenset({"job", "instance"})


_SAMPLE_RE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+\S")
_LABEL_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"(?:[^"\\]|\\.)*"')


def read_exposition(text: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """({family: type} from `# TYPE` lines, {sample name: label names}) of a /metrics page.

    Names are kept exactly as exposed (what Prometheus stores): prometheus_client's parser
    would rename a counter `x` to `x_total`, which is not what any query can select.
    """
    declared: dict[str, str] = {}
    sampled: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                declared[parts[2]] = parts[3]
            continue
        match = _SAMPLE_RE.match(line)
        if match:
            labels = {m.group(1) for m in _LABEL_RE.finditer(match.group(2) or "")}
            sampled.setdefault(match.group(1), set()).update(labels)
    return declared, sampled


def family_names(name: str, mtype: str) -> list[str]:
    """The series names a family announced as `# TYPE name mtype` will have."""
    if mtype == "counter":
        return [name]  # exposed as declared (prom-client and prometheus_client both add _total to the family)
    if mtype == "histogram":
        return [f"{name}_bucket", f"{name}_count", f"{name}_sum"]
    if mtype == "summary":
        return [name, f"{name}_count", f"{name}_sum"]
    return [name]


@dataclass
class ExportedSeries:
    """name -> job -> label names seen on that name's series."""

    source: str
    by_name: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    # Names declared (# TYPE) by a target that has no sample of them yet: a labelled family
    # before its first event. They exist, but their label names cannot be known.
    declared_only: set[str] = field(default_factory=set)

    def add(self, name: str, job: str, labels: Iterable[str]) -> None:
        self.by_name.setdefault(name, {}).setdefault(job, set()).update(labels)
        self.declared_only.discard(name)

    def declare(self, name: str, job: str) -> None:
        """A family the target announces without samples (so far)."""
        if name not in self.by_name or job not in self.by_name[name]:
            self.by_name.setdefault(name, {}).setdefault(job, set(TARGET_LABELS))
            self.declared_only.add(name)

    def jobs(self) -> set[str]:
        return {job for per_job in self.by_name.values() for job in per_job}

    def names(self, jobs: set[str] | None = None) -> set[str]:
        if jobs is None:
            return set(self.by_name)
        return {name for name, per_job in self.by_name.items() if per_job.keys() & jobs}

    def has(self, name: str, jobs: set[str] | None = None) -> bool:
        per_job = self.by_name.get(name)
        if not per_job:
            return False
        return jobs is None or bool(per_job.keys() & jobs)

    def labels(self, name: str, jobs: set[str] | None = None) -> set[str]:
        out: set[str] = set()
        for job, labels in self.by_name.get(name, {}).items():
            if jobs is None or job in jobs:
                out |= labels
        return out

    def add_recording_rules(self, records: Mapping[str, set[str]]) -> None:
        """Recording rules' outputs exist for every reader (their labels as the rule leaves them)."""
        for name, labels in records.items():
            self.add(name, "<recording rule>", labels)

    @classmethod
    def from_prometheus(cls, prom, start: float, end: float) -> ExportedSeries:
        """Every series Prometheus held between `start` and `end`."""
        catalog = cls(source=f"Prometheus {prom.url} series in [{start:.0f}, {end:.0f}]")
        for labels in prom.series(['{job=~".+"}'], start, end):
            name = labels.get("__name__", "")
            catalog.add(name, labels.get("job", ""), (k for k in labels if k != "__name__"))
        # Families a target declares but has no sample of yet (a labelled counter before its
        # first event): they exist, a rule on them can fire.
        for item in prom.target_metadata():
            job = (item.get("target") or {}).get("job", "")
            for name in family_names(str(item.get("metric", "")), str(item.get("type", ""))):
                catalog.declare(name, job)
        return catalog

    @classmethod
    def from_scrapes(cls, targets: Mapping[str, tuple[str, str | None]], timeout: float = 5.0) -> ExportedSeries:
        """Scrape each job's /metrics URL once (bearer token optional) and read its exposition."""
        catalog = cls(source="scrapes of " + ", ".join(f"{job}={url}" for job, (url, _) in targets.items()))
        for job, (url, token) in targets.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
                    text = resp.read().decode("utf-8", errors="replace")
            except urllib.error.HTTPError as err:
                if err.code in (401, 403):
                    fix = "pass its metrics token (--metrics-token)" if not token else "the metrics token was refused"
                else:
                    fix = "is it the metrics page (e.g. http://host:4000/metrics)?"
                raise HarnessError(f"scraping {url} for job {job} answered HTTP {err.code}; {fix}") from None
            except OSError as err:
                raise HarnessError(f"cannot scrape {url} for job {job} ({err}); is the target running?") from None
            declared, sampled = read_exposition(text)
            for name, labels in sampled.items():
                catalog.add(name, job, labels | TARGET_LABELS)
            for family, mtype in declared.items():
                for name in family_names(family, mtype):
                    if name not in sampled:
                        catalog.declare(name, job)
            for name in SYNTHETIC_PER_TARGET:
                catalog.add(name, job, TARGET_LABELS)
        return catalog
