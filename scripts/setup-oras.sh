#!/usr/bin/env bash
# Installs oras (pinned, from the Go module proxy) into .deps/go-bin, idempotently, and prints
# its path. scripts/oci_layout.sh uses it to write the OCI image layouts.
set -euo pipefail
cd "$(dirname "$0")/.."
ORAS_VERSION="v1.3.6"
BIN="$PWD/.deps/go-bin"

if [[ ! -x "$BIN/oras" || "$(cat "$BIN/oras.version" 2>/dev/null)" != "$ORAS_VERSION" ]]; then
  command -v go >/dev/null || { echo "error: go is needed to install oras" >&2; exit 1; }
  GOBIN="$BIN" go install "oras.land/oras/cmd/oras@$ORAS_VERSION" >&2
  echo "$ORAS_VERSION" > "$BIN/oras.version"
fi
echo "$BIN/oras"
