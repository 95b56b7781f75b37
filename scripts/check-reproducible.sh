#!/usr/bin/env bash
# Reproducibility check: same sources + same toolchain must give the same dist/mcp_authn.wasm.
#
# Build 1: scripts/build.sh in this checkout (its normal target/ dir).
# Build 2: scripts/build.sh in a copy of the sources in a temp dir, so it differs in everything
#          that must not matter: checkout path, a fresh (empty) target dir, and the CARGO_HOME
#          path (a temp dir whose entries link to the real ones, so nothing is downloaded).
# Then the two sha256 are compared. Exit 0 when equal, 1 when not.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The copy holds what git would commit (tracked + untracked, not ignored, still present), minus any
# build output (target/ dirs). Taken before build 1, so both builds see the same sources.
mkdir -p "$work/src" "$work/cargo-home"
git ls-files -z --cached --others --exclude-standard | grep -zEv '(^|/)target/' |
  while IFS= read -r -d '' f; do if [[ -f "$f" ]]; then printf '%s\0' "$f"; fi; done |
  xargs -0 cp --parents -t "$work/src"

scripts/build.sh >&2
first="$(sha256sum dist/mcp_authn.wasm | cut -d' ' -f1)"

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
for entry in "$cargo_home"/*; do
  ln -s "$entry" "$work/cargo-home/"
done
(cd "$work/src" && CARGO_HOME="$work/cargo-home" scripts/build.sh >&2)
second="$(sha256sum "$work/src/dist/mcp_authn.wasm" | cut -d' ' -f1)"

echo "build 1 (this checkout):                        $first"
echo "build 2 (copy, clean target, other CARGO_HOME): $second"
if [[ "$first" != "$second" ]]; then
  echo "NOT reproducible" >&2
  exit 1
fi
echo "reproducible: $(stat -c %s dist/mcp_authn.wasm) bytes, sha256 $first"
