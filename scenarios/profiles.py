"""Load profiles as data: who runs (user weights), how they behave (think times, session
sizes) and the load shape over time (stages), read from scenarios/profiles/<name>.toml.

    >>> profile = load_profile("smoke")                  # or a path to a .toml file
    >>> profile.stages[0].users, profile.weights["editor"]
    >>> profile.scaled(0.01).total_duration              # CI: long profiles shortened
    >>> list_profiles()
    ['baseline', 'capacity', 'smoke', 'soak', 'spike', 'stress']

Why data: a profile is reviewed and changed without touching the users' code, and the run
directory records exactly which file drove a run. Every mistake in a file is reported as
one HarnessError line that names the file, the key and the fix, because a bad profile must
end a run before it starts, not produce a run full of failures.

File format (all keys below; unknown keys are errors, so typos do not pass silently):

    name = "smoke"                    # must equal the file name without .toml
    description = "..."
    long = false                      # long by nature (soak): CI runs it only scaled down
    crosses_rate_limits = false       # explicit: true = meant to meet the contract's 429/1008
    [users]                           # relative weights of the user classes (0 = not run)
    editor = 2
    viewer = 1
    browser = 1
    onboarding = 0
    [sessions]
    participants = 3                  # users (editors + viewers) per CodeSync session
    [think]                           # seconds unless said otherwise; [a, b] = uniform range
    keystroke = 0.05                  # between characters of a typing burst
    burst_chars = [3, 8]              # characters per burst (count)
    between_bursts = [1.0, 3.0]
    cursor_probability = 0.5          # chance of a cursor move after a burst
    chat_probability = 0.1            # chance of a chat message after a burst
    autosave_interval = 10.0          # the browser client's autosave period
    viewer = [1.0, 2.0]               # a viewer's pause between looks at the document
    browser = [1.0, 3.0]              # a browsing user's pause between actions
    onboarding = [0.5, 1.5]           # pause between register/login waves
    onboarding_wave = 2               # accounts registered (and logged in) per wave
    [[stages]]                        # the LoadTestShape, in order
    name = "ramp"
    duration = 5                      # seconds (multiplied by the duration scale)
    users = 4                         # total users during this stage
    spawn_rate = 2                    # users started (or stopped) per second
    [step_ramp]                       # instead of [[stages]]: a capacity staircase
    start_users = 10
    step_users = 10
    steps = 10
    step_duration = 60
    spawn_rate = 5

The duration scale (`--duration-scale`, else $CODESYNC_DURATION_SCALE, else 1) multiplies
every stage duration (each stays at least MIN_STAGE_S long); think times are behaviour and
are never scaled.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from codesync_load.errors import HarnessError

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
USER_KINDS = ("editor", "viewer", "browser", "onboarding")
MIN_STAGE_S = 1.0
SCALE_ENV = "CODESYNC_DURATION_SCALE"

_TOP_KEYS = {"name", "description", "long", "crosses_rate_limits", "users", "sessions", "think", "stages", "step_ramp"}
_SESSION_KEYS = {"participants"}
_STAGE_KEYS = {"name", "duration", "users", "spawn_rate"}
_RAMP_KEYS = {"start_users", "step_users", "steps", "step_duration", "spawn_rate"}
_RANGES = ("burst_chars", "between_bursts", "viewer", "browser", "onboarding")
_SCALARS = ("keystroke", "cursor_probability", "chat_probability", "autosave_interval", "onboarding_wave")


@dataclass(frozen=True)
class Stage:
    """One step of the load shape: hold `users` for `duration` seconds."""

    name: str
    duration: float
    users: int
    spawn_rate: float


@dataclass(frozen=True)
class ThinkTimes:
    """How the simulated people pace themselves (see the module docstring for each field)."""

    keystroke: float = 0.05
    burst_chars: tuple[int, int] = (3, 8)
    between_bursts: tuple[float, float] = (1.0, 3.0)
    cursor_probability: float = 0.5
    chat_probability: float = 0.1
    autosave_interval: float = 10.0
    viewer: tuple[float, float] = (1.0, 2.0)
    browser: tuple[float, float] = (1.0, 3.0)
    onboarding: tuple[float, float] = (0.5, 1.5)
    onboarding_wave: int = 2


@dataclass(frozen=True)
class Profile:
    """A validated profile; `source` is the file it came from."""

    name: str
    description: str
    long: bool
    crosses_rate_limits: bool
    weights: dict[str, int]
    participants: int
    think: ThinkTimes
    stages: tuple[Stage, ...]
    source: Path
    duration_scale: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_duration(self) -> float:
        return sum(stage.duration for stage in self.stages)

    @property
    def peak_users(self) -> int:
        return max(stage.users for stage in self.stages)

    def scaled(self, factor: float) -> Profile:
        """The same profile with every stage duration multiplied by `factor`."""
        check_scale(factor, "duration scale")
        stages = tuple(replace(s, duration=max(MIN_STAGE_S, s.duration * factor)) for s in self.stages)
        return replace(self, stages=stages, duration_scale=self.duration_scale * factor)

    def stage_at(self, elapsed: float) -> Stage | None:
        """The stage running `elapsed` seconds after the start, None once all are done."""
        end = 0.0
        for stage in self.stages:
            end += stage.duration
            if elapsed < end:
                return stage
        return None

    def summary(self) -> dict[str, Any]:
        """What the run directory records about the profile."""
        return {
            "name": self.name,
            "source": str(self.source),
            "duration_scale": self.duration_scale,
            "total_duration_s": self.total_duration,
            "crosses_rate_limits": self.crosses_rate_limits,
            "long": self.long,
            "weights": dict(self.weights),
            "participants": self.participants,
            "stages": [vars(s) for s in self.stages],
        }


def list_profiles(directory: Path = PROFILE_DIR) -> list[str]:
    """Names of the profiles shipped in `directory`."""
    return sorted(p.stem for p in directory.glob("*.toml"))


def check_scale(value: float, what: str) -> float:
    if not isinstance(value, int | float) or math.isnan(value) or value <= 0 or math.isinf(value):
        raise HarnessError(f"{what} {value!r} is not a positive number; pass e.g. 0.1 to run ten times shorter")
    return float(value)


def scale_from_env(explicit: float | None = None) -> float:
    """--duration-scale if given, else $CODESYNC_DURATION_SCALE, else 1."""
    if explicit is not None:
        return check_scale(explicit, "--duration-scale")
    raw = os.environ.get(SCALE_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise HarnessError(f"${SCALE_ENV}={raw!r} is not a number; set it to e.g. 0.05 or unset it") from None
    return check_scale(value, f"${SCALE_ENV}")


def resolve_profile_path(name_or_path: str, directory: Path = PROFILE_DIR) -> Path:
    """A profile name (smoke) or a path to a .toml file, as an absolute path that exists
    (absolute: the Locust child process it is handed to may run elsewhere)."""
    candidate = Path(name_or_path)
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        if not candidate.is_file():
            raise HarnessError(f"profile file {name_or_path} does not exist; pass a profile name or an existing .toml")
        return candidate.resolve()
    path = directory / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(list_profiles(directory)) or "none"
        raise HarnessError(f"unknown profile {name_or_path!r}; choose one of: {known} (or pass a path to a .toml file)")
    return path


def load_profile(name_or_path: str, duration_scale: float | None = None, directory: Path = PROFILE_DIR) -> Profile:
    """Read, validate and scale a profile; any problem is one HarnessError line."""
    path = resolve_profile_path(name_or_path, directory)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise HarnessError(f"profile {path}: invalid TOML ({err}); fix the syntax") from None
    profile = parse_profile(raw, path)
    scale = scale_from_env(duration_scale)
    return profile.scaled(scale) if scale != 1.0 else profile


def parse_profile(raw: dict[str, Any], source: Path) -> Profile:
    """Validate a decoded profile document (see the module docstring for the format)."""
    v = _Validator(source)
    v.no_unknown(raw, _TOP_KEYS, "top level")
    name = v.string(raw, "name")
    if name != source.stem:
        v.fail(f"name = {name!r} differs from the file name; set name = {source.stem!r}")
    if "crosses_rate_limits" not in raw:
        v.fail("crosses_rate_limits is missing; say explicitly whether the profile means to meet the rate limits")
    users = v.table(raw, "users")
    v.no_unknown(users, set(USER_KINDS), "[users]")
    weights = {kind: v.integer(users, kind, minimum=0, default=0, where="[users]") for kind in USER_KINDS}
    if not any(weights.values()):
        v.fail("[users] gives every user class weight 0; give at least one a positive weight")
    sessions = v.table(raw, "sessions")
    v.no_unknown(sessions, _SESSION_KEYS, "[sessions]")
    participants = v.integer(sessions, "participants", minimum=1, where="[sessions]")
    think = _parse_think(v, raw.get("think", {}))
    stages = _parse_stages(v, raw)
    return Profile(
        name=name,
        description=v.string(raw, "description", default=""),
        long=v.boolean(raw, "long", default=False),
        crosses_rate_limits=v.boolean(raw, "crosses_rate_limits"),
        weights=weights,
        participants=participants,
        think=think,
        stages=stages,
        source=source,
    )


def _parse_think(v: _Validator, table: Any) -> ThinkTimes:
    if not isinstance(table, dict):
        v.fail("[think] must be a table")
    v.no_unknown(table, set(_RANGES) | set(_SCALARS), "[think]")
    defaults = ThinkTimes()
    values: dict[str, Any] = {}
    for key in _RANGES:
        values[key] = v.range(table, key, getattr(defaults, key), integer=key == "burst_chars")
    for key in ("keystroke", "autosave_interval"):
        values[key] = v.number(table, key, default=getattr(defaults, key), where="[think]", positive=True)
    for key in ("cursor_probability", "chat_probability"):
        value = v.number(table, key, default=getattr(defaults, key), where="[think]")
        if not 0 <= value <= 1:
            v.fail(f"[think] {key} = {value} is not a probability; use a number from 0 to 1")
        values[key] = value
    values["onboarding_wave"] = v.integer(table, "onboarding_wave", minimum=1, default=2, where="[think]")
    return ThinkTimes(**values)


def _parse_stages(v: _Validator, raw: dict[str, Any]) -> tuple[Stage, ...]:
    has_stages, has_ramp = "stages" in raw, "step_ramp" in raw
    if has_stages == has_ramp:
        v.fail("give exactly one of [[stages]] or [step_ramp]")
    if has_ramp:
        ramp = v.table(raw, "step_ramp")
        v.no_unknown(ramp, _RAMP_KEYS, "[step_ramp]")
        start = v.integer(ramp, "start_users", minimum=1, where="[step_ramp]")
        step = v.integer(ramp, "step_users", minimum=1, where="[step_ramp]")
        steps = v.integer(ramp, "steps", minimum=1, where="[step_ramp]")
        duration = v.number(ramp, "step_duration", where="[step_ramp]", positive=True)
        rate = v.number(ramp, "spawn_rate", where="[step_ramp]", positive=True)
        return tuple(Stage(f"step-{i + 1}", duration, start + i * step, rate) for i in range(steps))
    rows = raw["stages"]
    if not isinstance(rows, list) or not rows:
        v.fail("[[stages]] must hold at least one stage")
    stages = []
    for i, row in enumerate(rows):
        where = f"[[stages]] #{i + 1}"
        if not isinstance(row, dict):
            v.fail(f"{where} must be a table")
        v.no_unknown(row, _STAGE_KEYS, where)
        stages.append(
            Stage(
                name=v.string(row, "name", default=f"stage-{i + 1}"),
                duration=v.number(row, "duration", where=where, positive=True),
                users=v.integer(row, "users", minimum=0, where=where),
                spawn_rate=v.number(row, "spawn_rate", where=where, positive=True),
            )
        )
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        v.fail(f"stage names repeat ({names}); give each stage its own name, they name the phase windows")
    if max(s.users for s in stages) == 0:
        v.fail("every stage has users = 0; give at least one stage some users")
    return tuple(stages)


class _Validator:
    """Typed reads from a TOML table that fail with one line naming the file and the fix."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, message: str) -> None:
        raise HarnessError(f"profile {self.source}: {message}")

    def no_unknown(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            self.fail(f"unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")

    def table(self, raw: dict[str, Any], key: str) -> dict[str, Any]:
        value = raw.get(key)
        if not isinstance(value, dict):
            self.fail(f"[{key}] is missing or not a table; add a [{key}] section")
        return value

    def string(self, raw: dict[str, Any], key: str, default: str | None = None) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str) or (default is None and not value):
            self.fail(f"{key} must be a non-empty string")
        return value

    def boolean(self, raw: dict[str, Any], key: str, default: bool | None = None) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"{key} must be true or false, got {value!r}")
        return value

    def integer(self, raw: dict[str, Any], key: str, minimum: int, where: str, default: int | None = None) -> int:
        value = raw.get(key, default)
        if value is None:
            self.fail(f"{where} {key} is missing; add it (an integer >= {minimum})")
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(f"{where} {key} = {value!r} must be an integer >= {minimum}")
        return value

    def number(
        self, raw: dict[str, Any], key: str, where: str, default: float | None = None, positive: bool = False
    ) -> float:
        value = raw.get(key, default)
        if value is None:
            self.fail(f"{where} {key} is missing; add it (a number)")
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or math.isinf(value):
            self.fail(f"{where} {key} = {value!r} must be a number")
        if positive and value <= 0:
            self.fail(f"{where} {key} = {value!r} must be greater than 0")
        if value < 0:
            self.fail(f"{where} {key} = {value!r} must not be negative")
        return float(value)

    def range(self, table: dict[str, Any], key: str, default: tuple, integer: bool = False) -> tuple:
        value = table.get(key, list(default))
        ok = isinstance(value, list) and len(value) == 2
        ok = ok and all(isinstance(x, int | float) and not isinstance(x, bool) and x >= 0 for x in value)
        if ok and integer:
            ok = all(isinstance(x, int) for x in value)
        if not ok:
            kind = "integers" if integer else "numbers"
            self.fail(f"[think] {key} = {value!r} must be [min, max], two non-negative {kind}")
        if value[0] > value[1]:
            self.fail(f"[think] {key} = {value!r} has min > max; write [{value[1]}, {value[0]}]")
        return (int(value[0]), int(value[1])) if integer else (float(value[0]), float(value[1]))
