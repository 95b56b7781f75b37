#!/usr/bin/env bash
# The verifier tests on the production arithmetic: jws-verify's unit tests, the Wycheproof
# suites (JOSE, ECDSA P-256, every RSA PKCS#1 v1.5 and PSS set) and the ES256 differential
# tests, built for wasm32-wasip1 (32-bit limbs, as in Envoy) and run under Node's WASI
# (node:wasi, Node >= 20).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
if ! command -v node >/dev/null; then
  sudo_if_needed() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }
  sudo_if_needed apt-get update -qq && sudo_if_needed apt-get install -y -qq nodejs >/dev/null
fi
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if ((node_major < 20)); then
  echo "error: Node >= 20 is needed for node:wasi (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
export WASI_ROOT="$ROOT"
# The crate's own code optimised as in release (dependencies already are, see Cargo.toml), but
# with debug assertions kept: the shadow verifiers and the Montgomery invariants stay checked.
export CARGO_PROFILE_DEV_OPT_LEVEL=2
export CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings $ROOT/scripts/wasi-run.mjs"
cargo test --locked --target wasm32-wasip1 --test wycheproof --test wycheproof_rsa --test ecdsa_p256
cargo test --locked --target wasm32-wasip1 -p jws-verify --lib
