#!/usr/bin/env bash
# The one test command (README, .ci/run): lints, native tests, the wasm build, then the
# end-to-end suite against a real Envoy. Installs what it needs (rustup target, Envoy, peers).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# Which suites ran and which were skipped, for the summary: a skipped suite is never "passed".
ran=() skipped=()

step "toolchain"
rustup show active-toolchain
rustup target add wasm32-wasip1
rustup component add clippy rustfmt
if ! command -v wasm-opt >/dev/null; then
  # Debian's binaryen: the module shrinks by about a quarter (scripts/build.sh uses it if present).
  sudo_if_needed() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }
  sudo_if_needed apt-get update -qq && sudo_if_needed apt-get install -y -qq binaryen >/dev/null
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "no module cycle in src/ (scripts/module-cycles.py, after its self-test)"
python3 scripts/module-cycles.py --self-test
python3 scripts/module-cycles.py

step "cargo clippy (native, the workspace, all targets)"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo clippy (wasm32 host layer)"
cargo clippy --locked --lib --target wasm32-wasip1 -- -D warnings

step "cargo test"
cargo test --locked --workspace

step "verifier tests on wasm32 (Wycheproof and differential, under Node's WASI)"
scripts/wasm-tests.sh

step "build dist/mcp_authn.wasm"
scripts/build.sh

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ran+=("fmt" "module cycles" "clippy (native, wasm32)" "native tests" "wasm build")

if [[ "${SKIP_E2E:-0}" != "1" ]]; then
  step "demo check (scripts/demo.sh --check on free ports)"
  ENVOY_PORT=$(free_port) MCP_PORT=$(free_port) ADMIN_PORT=$(free_port) scripts/demo.sh --check

  step "demo check with Keycloak (scripts/demo.sh --idp keycloak --check: a headless browser login)"
  ENVOY_PORT=$(free_port) MCP_PORT=$(free_port) ADMIN_PORT=$(free_port) KEYCLOAK_PORT=$(free_port) \
    scripts/demo.sh --idp keycloak --check

  step "the func-e line of docs/operations.md (func-e from the Go module proxy, offline with ENVOY_PATH)"
  scripts/check-func-e.sh

  step "end-to-end: Envoy + filter + JWKS + MCP server and client"
  scripts/e2e.sh

  step "ship: OCI images through a registry, remote module loading, envoy --mode validate, Istio"
  scripts/ship-tests.sh

  step "soak (short form): mixed traffic with authorization rules, a rotation and an IdP outage, every answer checked"
  scripts/soak.sh 15
  ran+=("demo check" "demo check with Keycloak" "func-e line" "end-to-end" "ship" "soak (15 s)")
else
  skipped+=("demo checks, func-e line, end-to-end, ship, soak (SKIP_E2E=1)")
fi

if [[ "${SKIP_FUZZ:-0}" != "1" ]]; then
  step "fuzz smoke: every cargo-fuzz target for a bounded time"
  scripts/fuzz-smoke.sh
  ran+=("fuzz smoke")
else
  skipped+=("fuzz smoke (SKIP_FUZZ=1)")
fi
echo
printf 'ran and passed: %s\n' "${ran[@]}"
if ((${#skipped[@]})); then
  printf 'SKIPPED:        %s\n' "${skipped[@]}"
  echo "NOT all tests ran: the skipped suites above were not run"
else
  echo "all tests passed"
fi
