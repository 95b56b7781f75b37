#!/usr/bin/env bash
# Install what the ship tests (scripts/ship-tests.sh) need, idempotently:
#   - oras (pinned, from the Go module proxy, scripts/setup-oras.sh), which writes the OCI
#     image layouts (scripts/oci_layout.sh);
#   - Debian packages: skopeo (push/pull/inspect images without a daemon), umoci (an
#     independent check that the compat image unpacks with a standard tool) and
#     docker-registry (a loopback OCI registry for the push/pull round trip);
#   - the pinned Python packages of tests/ship/requirements.txt and tests/e2e/requirements.txt
#     into the repo's .venv (the ship tests mint tokens and make certificates with PyJWT and
#     cryptography, and check the Istio manifests with jsonschema, pinned there).
# apt-get runs only when a tool is missing, through sudo when not root.
#
# Note: on a machine with systemd, installing docker-registry also enables Debian's
# registry service (port 5000). The tests never use it; they start their own on loopback.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQS=("$ROOT/tests/ship/requirements.txt" "$ROOT/tests/e2e/requirements.txt")
PACKAGES=(skopeo umoci docker-registry)

missing=()
for tool in "${PACKAGES[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  if [[ "$(id -u)" == 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "error: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "installing ${missing[*]} (apt)" >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

ORAS="$("$ROOT/scripts/setup-oras.sh")"

if [[ ! -x "$VENV/bin/python" ]]; then
  "$(command -v python3.11 || command -v python3)" -m venv "$VENV"
fi
# Every pinned line must appear verbatim (case-insensitively) in pip freeze.
for reqs in "${REQS[@]}"; do
  stale="$(grep -E '^[A-Za-z0-9_.-]+==' "$reqs" \
    | grep -vixF -f <("$VENV/bin/python" -m pip freeze --disable-pip-version-check) || true)"
  if [[ -n "$stale" ]]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs" >&2
  fi
done
echo "ship test tools ready: $(skopeo --version), $(umoci --version), $(docker-registry --version)," \
  "oras $("$ORAS" version | sed -n 's/^Version: *//p')" >&2
