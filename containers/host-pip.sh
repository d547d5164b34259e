# Sourced by the twin image's pip steps: use the build-args images.py passes (the machine's
# CA bundle and package sources) and drop the empty ones, which pip would read as settings.
if [ -n "${HOST_CA:-}" ]; then export PIP_CERT="$HOST_CA"; fi
for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then unset "$name"; fi
done
