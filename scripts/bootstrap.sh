#!/usr/bin/env bash
# Make this checkout ready to run: a virtualenv with the project installed, and the Debian
# monitoring packages. Idempotent and quick when nothing changed; sourced by ./run and ./test.
#
# Why a script and not instructions: CI and new users start from a fresh clone, and the
# README promises that its two commands need nothing else.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 2; }

# 1. Python 3.11+ and a virtualenv with the project installed (editable, with dev extras).
command -v "$PY" >/dev/null || die "python3 not found; install Python 3.11 or newer (apt-get install python3 python3-venv)"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "$("$PY" -V 2>&1) is too old; install Python 3.11 or newer, or set PYTHON=/path/to/python3.11"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv in .venv"
  "$PY" -m venv "$VENV" || die "could not create .venv; install the venv module (apt-get install python3-venv)"
fi
stamp="$VENV/.bootstrap-stamp"
want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing codesync-load and its dependencies into .venv (first run takes a minute)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[dev]" \
    || die "pip could not install the project; see the pip output above"
  echo "$want" > "$stamp"
fi

# 2. Debian's Prometheus, Alertmanager and exporters (the real monitoring parts; the blackbox
# exporter is the uptime probe).
declare -A PKG_OF=(
  [prometheus]=prometheus [promtool]=prometheus [prometheus-alertmanager]=prometheus-alertmanager
  [amtool]=prometheus-alertmanager [prometheus-node-exporter]=prometheus-node-exporter
  [prometheus-postgres-exporter]=prometheus-postgres-exporter
  [prometheus-redis-exporter]=prometheus-redis-exporter
  [prometheus-blackbox-exporter]=prometheus-blackbox-exporter
)
missing=()
for bin in "${!PKG_OF[@]}"; do
  command -v "$bin" >/dev/null || missing+=("${PKG_OF[$bin]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  pkgs="$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: $pkgs"
    export DEBIAN_FRONTEND=noninteractive
    # Install without letting the packages start system services of their own.
    policy_rc="/usr/sbin/policy-rc.d"; made_policy=0
    if [ ! -e "$policy_rc" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy_rc"; chmod +x "$policy_rc"; made_policy=1; fi
    { apt-get install -y -q $pkgs >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $pkgs >/dev/null; }; } \
      || { [ "$made_policy" = 1 ] && rm -f "$policy_rc"; die "apt-get could not install $pkgs; run: apt-get update && apt-get install -y $pkgs"; }
    [ "$made_policy" = 1 ] && rm -f "$policy_rc"
  else
    die "missing Debian packages; as root run: apt-get update && apt-get install -y $pkgs"
  fi
fi
# 3. Debian's chromium, for the test that renders the HTML report headless (optional: without
# root the test skips and says why).
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "installing Debian package: chromium (renders the HTML report in a test)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } \
    || say "could not install chromium; the headless report test will skip"
fi
export PATH="$VENV/bin:$PATH"
