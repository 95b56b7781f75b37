#!/usr/bin/env bash
# Builds the release filter module: dist/mcp_authn.wasm (+ .sha256).
# wasm-opt runs when present (Debian's binaryen 108 needs the feature flags below).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
# Panic locations embed dependency source paths under CARGO_HOME: remap them so the bytes do not
# depend on who builds where (scripts/check-reproducible.sh checks this).
export RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
cargo build --locked --lib --release --target wasm32-wasip1
mkdir -p dist
out=dist/mcp_authn.wasm
cp target/wasm32-wasip1/release/mcp_authn.wasm "$out"
if command -v wasm-opt >/dev/null 2>&1; then
  # -Oz, not -O3: 17 KB smaller, and no measured cost to verification in V8, which inlines and
  # optimises on its own (docs/performance.md, Module size).
  # --enable-simd: the RSA public-key operation's inner loop is SIMD128 (crates/jws-verify).
  wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-mutable-globals --enable-simd "$out" -o "$out.opt"
  mv "$out.opt" "$out"
fi
# Envoy refuses modules importing wasm-bindgen shims; fail the build if one slipped in.
if grep -q "__wbindgen" "$out"; then
  echo "error: $out imports __wbindgen_* (Envoy cannot load it)" >&2
  exit 1
fi
# The size budget (1.25 MB, docs/performance.md): a module that outgrows it fails the build, not a reader.
BUDGET_BYTES=1250000
if [[ $(stat -c %s "$out") -gt $BUDGET_BYTES ]] && command -v wasm-opt >/dev/null 2>&1; then
  echo "error: $out is $(stat -c %s "$out") bytes, over the ${BUDGET_BYTES}-byte budget (docs/performance.md, Module size)" >&2
  exit 1
fi
(cd dist && sha256sum mcp_authn.wasm > mcp_authn.wasm.sha256)
echo "built $out ($(stat -c %s "$out") bytes, sha256 $(cut -d' ' -f1 dist/mcp_authn.wasm.sha256))"
