"""The metric contract as data: what a CodeSync deployment exports and what moves it.

    >>> from codesync_load.contract import load_contract
    >>> contract = load_contract()            # the backend's real names
    >>> contract.metric("codesync_sessions_active").type
    'gauge'

The twin instruments itself from this table, and the verifier and reports read it, so a
deployment with other names is described by another TOML file, not by code changes.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

CONTRACT_DIR = Path(__file__).resolve().parent
DEFAULT_CONTRACT = CONTRACT_DIR / "backend.toml"

METRIC_TYPES = ("counter", "gauge", "histogram")
PROCESSES = ("api", "yjs", "both")


class ContractError(ValueError):
    """A contract file that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class MetricSpec:
    """One metric family of the contract."""

    name: str
    type: str
    labels: tuple[str, ...]
    process: str
    moved_by: str
    buckets: tuple[float, ...] = ()
    label_values: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def exported_by(self, process: str) -> bool:
        """True when the process named `api` or `yjs` exports this family."""
        return self.process in (process, "both")


@dataclass(frozen=True)
class Contract:
    """A named set of metric specs, looked up by name."""

    name: str
    prefix: str
    description: str
    metrics: tuple[MetricSpec, ...]

    def metric(self, name: str) -> MetricSpec:
        for spec in self.metrics:
            if spec.name == name:
                return spec
        raise KeyError(f"metric {name!r} is not in contract {self.name!r}")

    def names(self) -> list[str]:
        return [spec.name for spec in self.metrics]

    def for_process(self, process: str) -> list[MetricSpec]:
        return [spec for spec in self.metrics if spec.exported_by(process)]


def _spec_from_table(raw: dict, source: Path) -> MetricSpec:
    try:
        name = raw["name"]
        mtype = raw["type"]
    except KeyError as missing:
        raise ContractError(f"{source}: a [[metric]] entry lacks {missing}; add it") from None
    if mtype not in METRIC_TYPES:
        raise ContractError(f"{source}: metric {name} has type {mtype!r}; use one of {METRIC_TYPES}")
    process = raw.get("process", "api")
    if process not in PROCESSES:
        raise ContractError(f"{source}: metric {name} has process {process!r}; use one of {PROCESSES}")
    buckets = tuple(float(b) for b in raw.get("buckets", ()))
    if mtype == "histogram" and not buckets:
        raise ContractError(f"{source}: histogram {name} needs buckets = [...]")
    return MetricSpec(
        name=name,
        type=mtype,
        labels=tuple(raw.get("labels", ())),
        process=process,
        moved_by=raw.get("moved_by", ""),
        buckets=buckets,
        label_values={k: tuple(v) for k, v in raw.get("label_values", {}).items()},
    )


def load_contract(path: str | Path | None = None) -> Contract:
    """Read a contract TOML file (default: the backend's real metric names)."""
    source = Path(path) if path else DEFAULT_CONTRACT
    try:
        data = tomllib.loads(source.read_text())
    except FileNotFoundError:
        raise ContractError(f"contract file {source} does not exist; pass an existing TOML file") from None
    except tomllib.TOMLDecodeError as err:
        raise ContractError(f"contract file {source} is not valid TOML ({err}); fix the syntax") from None
    metrics = tuple(_spec_from_table(raw, source) for raw in data.get("metric", ()))
    if not metrics:
        raise ContractError(f"contract file {source} defines no [[metric]] entries")
    return Contract(
        name=data.get("name", source.stem),
        prefix=data.get("prefix", ""),
        description=data.get("description", ""),
        metrics=metrics,
    )


ROUTES_FILE = CONTRACT_DIR / "routes.toml"


@dataclass(frozen=True)
class RouteSpec:
    """One REST route of CodeSync: method, Express template, and whether it demands a CSRF token."""

    method: str
    path: str
    csrf: bool


def load_routes(path: str | Path | None = None) -> tuple[RouteSpec, ...]:
    """The routes file (default codesync_load/contract/routes.toml), in its order."""
    source = Path(path) if path else ROUTES_FILE
    try:
        data = tomllib.loads(source.read_text())
    except FileNotFoundError:
        raise ContractError(f"routes file {source} does not exist; pass an existing TOML file") from None
    except tomllib.TOMLDecodeError as err:
        raise ContractError(f"routes file {source} is not valid TOML ({err}); fix the syntax") from None
    routes = []
    for raw in data.get("route", ()):
        method, template, csrf = raw.get("method"), raw.get("path"), raw.get("csrf")
        if not isinstance(method, str) or not isinstance(template, str) or not isinstance(csrf, bool):
            raise ContractError(f"{source}: every [[route]] needs method, path (strings) and csrf (true/false): {raw}")
        routes.append(RouteSpec(method.upper(), template, csrf))
    if not routes:
        raise ContractError(f"routes file {source} defines no [[route]] entries")
    return tuple(routes)
