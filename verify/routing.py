"""Which Alertmanager receivers an alert with given labels reaches, by walking the route tree.

    >>> reached = route_alert(am_config["route"], {"alertname": "ServiceDown", "severity": "critical"})
    >>> [(r.receiver, r.by_matchers) for r in reached]
    [('harness', ()), ('critical-immediate', ('severity="critical"',))]

Alertmanager's rule, done by hand so a static check needs no running Alertmanager: a route
matches when all its matchers match; the children are tried in order and the first match
wins unless it says `continue: true`; a route none of whose children match delivers to its
own receiver (inherited from the parent when it names none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from codesync_load.promql import Matcher

_MATCHER_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


def parse_matcher(text: str) -> Matcher:
    """`severity="critical"` / `severity=~"crit.*"` (quotes optional, as Alertmanager allows)."""
    match = _MATCHER_RE.match(text)
    if not match:
        raise ValueError(f"not an Alertmanager matcher: {text!r}")
    label, op, value = match.groups()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"')
    return Matcher(label, op, value)


def route_matchers(route: dict[str, Any]) -> list[Matcher]:
    out = []
    for item in route.get("matchers") or []:
        out.append(parse_matcher(str(item)))
    for label, value in (route.get("match") or {}).items():
        out.append(Matcher(str(label), "=", str(value)))
    for label, value in (route.get("match_re") or {}).items():
        out.append(Matcher(str(label), "=~", str(value)))
    return out


@dataclass(frozen=True)
class Reached:
    receiver: str
    path: str
    by_matchers: tuple[str, ...]  # the matchers on the way from the root (root excluded)


def _matches(route: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(m.matches(labels.get(m.label, "")) for m in route_matchers(route))


def route_alert(root: dict[str, Any], labels: dict[str, str]) -> list[Reached]:
    """Every (receiver, route path) an alert with `labels` is delivered to."""

    def walk(route: dict[str, Any], receiver: str, path: str, matchers: tuple[str, ...]) -> list[Reached]:
        receiver = str(route.get("receiver") or receiver)
        found: list[Reached] = []
        for i, child in enumerate(route.get("routes") or []):
            if not _matches(child, labels):
                continue
            own = tuple(f'{m.label}{m.op}"{m.value}"' for m in route_matchers(child))
            found.extend(walk(child, receiver, f"{path}.routes[{i}]", matchers + own))
            if not child.get("continue"):
                break
        return found or [Reached(receiver, path, matchers)]

    return walk(root, "", "route", ())


def receiver_integrations(config: dict[str, Any]) -> dict[str, list[str]]:
    """Receiver name -> the kinds of integration it has (email_configs, webhook_configs, ...)."""
    out = {}
    for receiver in config.get("receivers") or []:
        kinds = [k for k, v in receiver.items() if k.endswith("_configs") and v]
        out[str(receiver.get("name"))] = kinds
    return out
