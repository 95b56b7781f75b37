#!/usr/bin/env bash
# Print the path of the Envoy binary installed by scripts/setup-envoy.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/setup-envoy.sh" --print-path
