#!/usr/bin/env bash
# bench/run.sh — build the daemon and agent, then run the sandbox lifecycle benchmark with the
# given args (e.g. --quick, --image busybox:latest, --idle 50). Needs root (jail driver).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build -j2 --target warren warren-agent warren-jail-init
exec /usr/bin/python3 bench/sandbox_lifecycle.py "$@"
