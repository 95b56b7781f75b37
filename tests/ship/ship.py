"""Shared plumbing for the ship tests: repo paths and bounded subprocess runs.

Process, port and Envoy helpers come from the end-to-end harness (tests/e2e/harness.py),
so both suites follow the same rules: loopback only, free ports, bounded waits, and every
started process stopped by its process group.
"""

import hashlib
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import harness  # noqa: E402  (needs the path above)
import yaml  # noqa: E402

WASM_PATH = harness.WASM_PATH
OCI_DIR = os.path.join(ROOT, "dist", "oci")
CHECKER = os.path.join(ROOT, "target", "release", "mcp-authn")
ISTIO_DIR = os.path.join(ROOT, "envoy", "istio")
RENDERED_DIR = os.path.join(ROOT, "dist", "istio")  # the templates, rendered by scripts/oci.sh
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def is_template(path):
    with open(path) as f:
        return bool(PLACEHOLDER.search(f.read()))


def load_yaml(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def applied_path(name):
    """Where envoy/istio/`name` is as a user applies it: rendered if it is a template."""
    path = os.path.join(ISTIO_DIR, name)
    return os.path.join(RENDERED_DIR, name) if is_template(path) else path


def applied(name):
    """The documents of envoy/istio/`name` as applied."""
    return load_yaml(applied_path(name))


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    with open(path, "rb") as f:
        return sha256_bytes(f.read())


def run(argv, timeout=60, cwd=ROOT):
    """Run a command to completion (bounded); return CompletedProcess with text output."""
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def run_ok(testcase, argv, timeout=60, cwd=ROOT):
    """Like run(), but fail `testcase` with the command's output when it exits non-zero."""
    result = run(argv, timeout=timeout, cwd=cwd)
    if result.returncode != 0:
        testcase.fail(f"{argv[0]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result
