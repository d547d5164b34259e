#!/usr/bin/env bash
# Make this machine able to run the containerised stack without Docker or a registry:
# Debian's podman (with runc) and debootstrap, and a podman configuration kept OUTSIDE the
# git tree so every clone on this machine reuses one image cache.
#
#   scripts/containers.sh            # install what is missing, print the environment to use
#   eval "$(scripts/containers.sh)"  # ... and use it in this shell
#   scripts/containers.sh --env-only # install nothing: write the configuration, print the environment
#
# Why a containers.conf of our own (through CONTAINERS_CONF, no system file changed): crun
# refuses this host's hybrid cgroups (runtime = "runc"), the host cannot raise limits
# (default_ulimits), and there is no systemd (cgroup_manager = "cgroupfs", events to a file).
# Prints `export NAME=value` lines on stdout; everything else goes to stderr. Exit status 3
# with one line on stderr when podman cannot run on this machine.
set -euo pipefail
ENV_ONLY=0; [ "${1:-}" = "--env-only" ] && ENV_ONLY=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'containers: %s\n' "$*" >&2; }
die() { printf 'containers: error: %s\n' "$*" >&2; exit "${2:-2}"; }

if [ -n "${CODESYNC_CONTAINERS_DIR:-}" ]; then
  DIR="$CODESYNC_CONTAINERS_DIR"
elif [ "$(id -u)" = 0 ]; then
  DIR=/var/cache/codesync-load/containers
else
  DIR="${XDG_CACHE_HOME:-$HOME/.cache}/codesync-load/containers"
fi
mkdir -p "$DIR" || die "cannot create $DIR; set CODESYNC_CONTAINERS_DIR to a writable folder"
DIR="$(cd "$DIR" && pwd)"
# Runtime state (locks, container mounts) must not outlive a reboot: /run when root.
if [ "$(id -u)" = 0 ]; then RUNROOT=/run/codesync-load-containers; else RUNROOT="${XDG_RUNTIME_DIR:-/tmp}/codesync-load-containers-$(id -u)"; fi

# 1. Debian packages: podman, runc, debootstrap (no recommends: no slirp/fuse/buildah needed as root).
missing=()
[ "$ENV_ONLY" = 1 ] || {
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }; } \
      || die "apt-get could not install ${missing[*]}; run: apt-get update && apt-get install -y ${missing[*]}" 3
  else
    die "podman needs Debian packages ${missing[*]}; as root run: apt-get install -y --no-install-recommends ${missing[*]}" 3
  fi
fi
}
# podman-compose 1.6.0 (Debian's 1.0.3 lacks `config`) is a Python dependency in pyproject.toml.

# 2. The configuration podman reads through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF.
mkdir -p "$DIR/storage" "$RUNROOT"
tmp="$(mktemp "$DIR/.conf.XXXXXX")"
cat > "$tmp" <<CONF
# Written by codesync-load scripts/containers.sh; read through CONTAINERS_CONF.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
mv "$tmp" "$DIR/containers.conf"
tmp="$(mktemp "$DIR/.conf.XXXXXX")"
cat > "$tmp" <<CONF
# Written by codesync-load scripts/containers.sh; read through CONTAINERS_STORAGE_CONF.
[storage]
driver = "overlay"
graphroot = "$DIR/storage"
runroot = "$RUNROOT"
CONF
mv "$tmp" "$DIR/storage.conf"

printf 'export CONTAINERS_CONF=%q\n' "$DIR/containers.conf"
printf 'export CONTAINERS_STORAGE_CONF=%q\n' "$DIR/storage.conf"
printf 'export CODESYNC_CONTAINERS_DIR=%q\n' "$DIR"
