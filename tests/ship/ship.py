"""Shared plumbing for the ship tests: repo paths and bounded subprocess runs.

Process, port and Envoy helpers come from the end-to-end harness (tests/e2e/harness.py),
so both suites follow the same rules: loopback only, free ports, bounded waits, and every
started process stopped by its process group.
"""

import hashlib
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import harness  # noqa: E402  (needs the path above)

WASM_PATH = harness.WASM_PATH
OCI_DIR = os.path.join(ROOT, "dist", "oci")
CHECKER = os.path.join(ROOT, "target", "release", "mcp-authn")


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
