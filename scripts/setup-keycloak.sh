#!/usr/bin/env bash
# Install the real Keycloak the sign-in tests and `scripts/demo.sh --idp keycloak` run:
# org.keycloak:keycloak-quarkus-dist (pinned below) from Maven Central with `mvn`, unpacked
# into .deps/keycloak/keycloak-<version>. Also installs Debian's chromium (the browser the
# sign-in tests drive with playwright-core) when it is missing.
# Needs Java 17+ (Keycloak 26.5 runs on 17, 21 and 25) and mvn.
# Idempotent: downloads and unpacks only when the pinned version is not there yet.
# Prints the Keycloak home.
#
# Usage: scripts/setup-keycloak.sh [--print-path]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="26.5.6"
BASE="$ROOT/.deps/keycloak"
HOME_DIR="$BASE/keycloak-$VERSION"

if [[ "${1:-}" == "--print-path" ]]; then
  [[ -x "$HOME_DIR/bin/kc.sh" ]] || { echo "error: run scripts/setup-keycloak.sh first" >&2; exit 1; }
  echo "$HOME_DIR"
  exit 0
fi

sudo_if_needed() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }
need() { # need COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null && return 0
  sudo_if_needed apt-get update -qq >&2
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

need java openjdk-17-jre-headless
need mvn maven
need unzip unzip
need chromium chromium

if [[ ! -x "$HOME_DIR/bin/kc.sh" || "$(cat "$HOME_DIR/version.txt" 2>/dev/null)" != *"$VERSION"* ]]; then
  mkdir -p "$BASE"
  zip="$BASE/keycloak-quarkus-dist-$VERSION.zip"
  if [[ ! -f "$zip" ]]; then
    mvn -q -B dependency:copy "-Dartifact=org.keycloak:keycloak-quarkus-dist:$VERSION:zip" \
      "-DoutputDirectory=$BASE" >&2
  fi
  rm -rf "$HOME_DIR" "$BASE/unpack"
  mkdir -p "$BASE/unpack"
  unzip -q "$zip" -d "$BASE/unpack"
  mv "$BASE/unpack/keycloak-$VERSION" "$HOME_DIR"
  rm -rf "$BASE/unpack"
fi

echo "keycloak ready: $HOME_DIR ($(head -n 1 "$HOME_DIR/version.txt"))" >&2
echo "$HOME_DIR"
