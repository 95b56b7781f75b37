# What scripts/demo.sh and scripts/demo-keycloak.sh share; each sources this from the repo root
# with its own arguments. Sets ROOT, the ports, CHECK (1 with --check) and ENVOY (the binary),
# builds the module, and keeps every process started into `pids` in WORK (a temporary folder):
# on exit they are stopped by process group, and WORK is removed unless `fail` kept it for its logs.
ROOT=$(pwd)
ENVOY_PORT=${ENVOY_PORT:-10000}
MCP_PORT=${MCP_PORT:-3000}
ADMIN_PORT=${ADMIN_PORT:-9901}
CHECK=0
for arg in "$@"; do [[ $arg == --check ]] && CHECK=1; done

scripts/build.sh >&2
ENVOY=$(scripts/setup-envoy.sh)
scripts/setup-peers.sh

WORK=$(mktemp -d)
KEEP_WORK=0
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  done
  [[ $KEEP_WORK == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { # message
  echo "error: $1; logs in $WORK" >&2
  for f in "$WORK"/*.log; do [[ -f $f ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
  KEEP_WORK=1
  exit 1
}
wait_for() { # url, what, tries (0.2 s each)
  for _ in $(seq "${3:-150}"); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.2
  done
  fail "$2 did not come up ($1)"
}

render_envoy() { # template, extra sed arguments...: the template with this run's ports and module, as $WORK/envoy.yaml
  local template=$1
  shift
  sed -e "s/port_value: 10000/port_value: ${ENVOY_PORT}/" \
      -e "s/port_value: 3000/port_value: ${MCP_PORT}/" \
      -e "s/port_value: 9901/port_value: ${ADMIN_PORT}/" \
      -e "s#filename: dist/mcp_authn.wasm#filename: ${ROOT}/dist/mcp_authn.wasm#" \
      "$@" "$template" > "$WORK/envoy.yaml"
}

start_mcp_and_envoy() { # the FastMCP server and Envoy on $WORK/envoy.yaml, both ready
  setsid .venv/bin/python tests/e2e/mcp_server.py "$MCP_PORT" > "$WORK/mcp.log" 2>&1 &
  pids+=($!)
  setsid "$ENVOY" -c "$WORK/envoy.yaml" --concurrency 2 --log-level warn --disable-hot-restart > "$WORK/envoy.log" 2>&1 &
  pids+=($!)
  wait_for "http://127.0.0.1:${ADMIN_PORT}/ready" "Envoy"
  wait_for "http://127.0.0.1:${MCP_PORT}/" "the MCP server"
}
