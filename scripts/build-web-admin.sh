#!/usr/bin/env bash
# Builds the web admin console (/admin/) into OUT: the console's own files from web/admin, and
# xterm.js + its fit addon from npm (web/admin/package-lock.json, installed once into
# NPM_CACHE/<hash of package.json and the lock>). Run by CMake (target web_admin) on every build;
# quick once the npm packages are cached. Without npm or the registry the console is still
# built, without its terminal (the page says so) — a warning, never a failed build.
set -euo pipefail
SRC=$1 OUT=$2 NPM_CACHE=$3
mkdir -p "$OUT/vendor" "$NPM_CACHE"
for f in index.html app.js app.css; do
  cmp -s "$SRC/$f" "$OUT/$f" || cp "$SRC/$f" "$OUT/$f"
done
key=$(cat "$SRC/package.json" "$SRC/package-lock.json" | sha256sum | cut -c1-16)
mods="$NPM_CACHE/$key"
exec 9>"$NPM_CACHE/.lock"
flock 9
if [ ! -f "$mods/.complete" ]; then
  rm -rf "$mods" && mkdir -p "$mods"
  cp "$SRC/package.json" "$SRC/package-lock.json" "$mods/"
  if command -v npm >/dev/null 2>&1 && (cd "$mods" && { npm ci --no-audit --no-fund >npm.log 2>&1 || npm install --no-audit --no-fund >>npm.log 2>&1; }); then
    touch "$mods/.complete"
  else
    echo "warning: web admin console: npm ci failed (see $mods/npm.log); the console is built without its terminal" >&2
  fi
fi
if [ -f "$mods/.complete" ]; then
  for f in @xterm/xterm/lib/xterm.js @xterm/xterm/css/xterm.css @xterm/addon-fit/lib/addon-fit.js; do
    cmp -s "$mods/node_modules/$f" "$OUT/vendor/$(basename "$f")" || cp "$mods/node_modules/$f" "$OUT/vendor/"
  done
else
  rm -f "$OUT/vendor/xterm.js" "$OUT/vendor/xterm.css" "$OUT/vendor/addon-fit.js"
fi
