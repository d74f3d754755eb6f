#!/usr/bin/env bash
# Quick start: install, build, prepare the default image (and E2B's base template), start a single-node Warren on
# 127.0.0.1:7070 with the embedded default config. Extra args go to `warren serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
DATA_DIR="${WARREN_DATA_DIR:-/var/lib/warren}"
if build/bin/warren image --help >/dev/null 2>&1; then
  build/bin/warren image build debian:bookworm --data-dir "$DATA_DIR"
  # E2B's default template (docs/guides/e2b-compat.md); WARREN_NO_E2B_BASE=1 skips it.
  if [ -z "${WARREN_NO_E2B_BASE:-}" ]; then build/bin/warren image build base:latest --data-dir "$DATA_DIR"; fi
fi
echo "warren: starting; stop with Ctrl-C"
exec build/bin/warren serve --data-dir "$DATA_DIR" "$@"
