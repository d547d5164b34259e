"""Profiles as data: every shipped profile loads, scales, and every mistake is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesync_load.errors import HarnessError
from scenarios.profiles import PROFILE_DIR, list_profiles, load_profile, scale_from_env

SHIPPED = ["baseline", "capacity", "ci", "smoke", "soak", "spike", "stress"]


def test_every_required_profile_ships_and_validates() -> None:
    assert set(SHIPPED) <= set(list_profiles())
    for name in list_profiles():
        profile = load_profile(name, duration_scale=1.0)
        assert profile.name == name
        assert profile.total_duration > 0
    assert load_profile("soak", duration_scale=1.0).long is True
    assert load_profile("stress", duration_scale=1.0).crosses_rate_limits is True
    assert all(not load_profile(n, duration_scale=1.0).crosses_rate_limits for n in SHIPPED if n != "stress")
    assert load_profile("ci", duration_scale=1.0).total_duration == 30  # long enough for scrapes


def test_capacity_is_a_step_ramp() -> None:
    profile = load_profile("capacity", duration_scale=1.0)
    assert [s.users for s in profile.stages] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert {s.duration for s in profile.stages} == {60.0}
    assert profile.stage_at(0).name == "step-1"
    assert profile.stage_at(61).name == "step-2"
    assert profile.stage_at(600) is None


def test_duration_scale_from_option_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    soak = load_profile("soak", duration_scale=0.01)
    assert soak.total_duration == pytest.approx(72.0)
    assert soak.duration_scale == 0.01
    monkeypatch.setenv("CODESYNC_DURATION_SCALE", "0.5")
    assert load_profile("smoke").total_duration == pytest.approx(7.0)
    assert scale_from_env(2.0) == 2.0  # the option wins over the environment
    # stages never shrink below one shape tick
    assert min(s.duration for s in load_profile("smoke", duration_scale=0.0001).stages) == 1.0
    monkeypatch.setenv("CODESYNC_DURATION_SCALE", "fast")
    with pytest.raises(HarnessError, match=r"CODESYNC_DURATION_SCALE='fast' is not a number"):
        load_profile("smoke")
    with pytest.raises(HarnessError, match="not a positive number"):
        load_profile("smoke", duration_scale=0)


def test_unknown_profile_name_lists_the_choices() -> None:
    with pytest.raises(HarnessError) as err:
        load_profile("smokey")
    assert str(err.value) == (
        f"unknown profile 'smokey'; choose one of: {', '.join(list_profiles())} (or pass a path to a .toml file)"
    )
    assert "baseline, capacity" in str(err.value)


def _write(tmp_path: Path, text: str, name: str = "custom") -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return str(path)


GOOD = (PROFILE_DIR / "smoke.toml").read_text().replace('name = "smoke"', 'name = "custom"')


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("crosses_rate_limits = false\n", ""), "crosses_rate_limits is missing"),
        (lambda t: t.replace("editor = 2", "editors = 2"), "unknown key(s) ['editors'] in [users]"),
        (lambda t: t.replace("participants = 3", "participants = 0"), "[sessions] participants = 0 must be"),
        (
            lambda t: t.replace("spawn_rate = 5", "spawn_rate = -1", 1),
            "[[stages]] #1 spawn_rate = -1 must be greater than 0",
        ),
        (lambda t: t.replace("chat_probability = 0.3", "chat_probability = 3"), "is not a probability"),
        (lambda t: t.replace("browser = [1.0, 2.0]", "browser = [2.0, 1.0]"), "has min > max"),
        (lambda t: t.replace('name = "custom"', 'name = "other"'), "differs from the file name"),
        (lambda t: t.replace('name = "steady"', 'name = "ramp"'), "stage names repeat"),
        (lambda t: t + "\n[step_ramp]\nstart_users = 1\n", "exactly one of [[stages]] or [step_ramp]"),
        (lambda t: t.replace("[users]", "[users\n"), "invalid TOML"),
    ],
)
def test_invalid_profile_files_fail_with_file_and_fix(tmp_path: Path, edit, message: str) -> None:
    path = _write(tmp_path, edit(GOOD))
    with pytest.raises(HarnessError) as err:
        load_profile(path)
    text = str(err.value)
    assert text.startswith(f"profile {path}: ")
    assert message in text
    assert "\n" not in text


def test_a_valid_custom_file_loads(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path, GOOD), duration_scale=1.0)
    assert profile.weights == {"editor": 2, "viewer": 1, "browser": 1, "onboarding": 1}
    assert profile.participants == 3
    with pytest.raises(HarnessError, match="does not exist"):
        load_profile(str(tmp_path / "nope.toml"))


def test_a_relative_profile_path_becomes_absolute_for_the_locust_child(tmp_path: Path, monkeypatch) -> None:
    """`gate --profile my.toml` hands the file to a Locust child: a relative path broke it."""
    _write(tmp_path, GOOD)
    monkeypatch.chdir(tmp_path)
    profile = load_profile("custom.toml")
    assert profile.source == tmp_path / "custom.toml" and profile.source.is_absolute()
