#!/usr/bin/env bash
# Proves the `func-e run` line of docs/operations.md: installs func-e (pinned, from the Go module proxy)
# into .deps/go-bin, runs `ENVOY_PATH=$(scripts/setup-envoy.sh) func-e run -c envoy/envoy.yaml`
# offline (ENVOY_PATH: func-e downloads nothing), on free ports, and checks the 401 and the
# resource metadata. Stops func-e and Envoy by process group.
set -euo pipefail
cd "$(dirname "$0")/.."
FUNC_E_VERSION="v1.6.0"
BIN="$PWD/.deps/go-bin"

if [[ ! -x "$BIN/func-e" || "$(cat "$BIN/func-e.version" 2>/dev/null)" != "$FUNC_E_VERSION" ]]; then
  command -v go >/dev/null || { echo "error: go is needed to install func-e" >&2; exit 1; }
  GOBIN="$BIN" go install "github.com/tetratelabs/func-e/cmd/func-e@$FUNC_E_VERSION" >&2
  echo "$FUNC_E_VERSION" > "$BIN/func-e.version"
fi
[[ -f dist/mcp_authn.wasm ]] || { echo "error: build dist/mcp_authn.wasm first (scripts/build.sh)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
LISTEN=$(free_port) ADMIN=$(free_port)
WORK=$(mktemp -d)
pid=""
cleanup() {
  [[ -n $pid ]] && kill -TERM -- "-$pid" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# envoy/envoy.yaml as written, on free ports (the module path stays relative to the repository).
sed -e "s/port_value: 10000/port_value: $LISTEN/" -e "s/port_value: 9901/port_value: $ADMIN/" \
  -e "s#127.0.0.1:10000#127.0.0.1:$LISTEN#g" envoy/envoy.yaml > "$WORK/envoy.yaml"

ENVOY_PATH=$(scripts/setup-envoy.sh) FUNC_E_HOME="$WORK/home" setsid "$BIN/func-e" run -c "$WORK/envoy.yaml" \
  > "$WORK/func-e.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  [[ "$(curl -s "http://127.0.0.1:$ADMIN/ready")" == LIVE ]] && break
  sleep 0.2
done
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$LISTEN/mcp")
prm=$(curl -s "http://127.0.0.1:$LISTEN/.well-known/oauth-protected-resource/mcp")
if [[ $code != 401 || $prm != *'"resource":"http://127.0.0.1:'"$LISTEN"'/mcp"'* ]]; then
  echo "func-e check failed: POST /mcp -> $code, metadata: $prm" >&2
  tail -n 20 "$WORK/func-e.log" >&2
  exit 1
fi
echo "func-e $FUNC_E_VERSION ran envoy/envoy.yaml offline with ENVOY_PATH: 401 and the resource metadata served"
