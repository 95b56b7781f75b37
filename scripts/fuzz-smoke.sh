#!/usr/bin/env bash
# CI smoke run: every fuzz target for a short, bounded time (default 20 s each, 7 targets),
# installing cargo-fuzz first when missing. Exits non-zero on any crash.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/fuzz.sh" "${FUZZ_SMOKE_SECONDS:-20}"
