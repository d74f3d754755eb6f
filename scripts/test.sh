#!/usr/bin/env bash
# The whole test suite: install, build, then every unit and integration test through CTest.
# Integration tests start real daemons and sandboxes, so this runs as root (as CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j2 --timeout 900 "$@"
