#!/usr/bin/env bash
# Installs every Debian package Warren builds, runs and tests with. Idempotent: a second run
# that finds everything present does no network work. Never downloads anything but packages.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install-deps: run as root (it uses apt-get)" >&2; exit 1; }

BACKPORTS=/etc/apt/sources.list.d/warren-bookworm-backports.sources
PKGS=(build-essential cmake ninja-build ccache pkg-config git
      libcaf-dev libboost1.81-dev librocksdb-dev libspdlog-dev nlohmann-json3-dev libssl-dev zlib1g-dev libcurl4-openssl-dev
      libseccomp-dev libedit-dev
      debootstrap busybox-static bubblewrap nftables iproute2 xfsprogs util-linux procps
      curl openssl python3 python3-pytest python3-websockets
      nginx wrk chromium tmux
      skopeo docker-registry zstd python3-cryptography  # registry pull tests (tests/integration/test_registry_pull.py)
      dnsmasq-base  # the egress tests' own DNS server (tests/integration/test_egress_policy.py)
      liblzma-dev)  # the microvm driver unpacks the guest kernel's xz stream (vmm/microvm/guest_kernel.cpp)
# QEMU 10 for the microvm driver (docs/design/microvm.md): bookworm's 7.2 boots, but 10 has the
# `file:` migration with mapped-ram that snapshots need. qemu-system-data (a dependency, also taken
# from backports) carries /usr/share/qemu/qboot.rom, the firmware the driver boots with.
BPO_PKGS=(catch2 qemu-system-x86)
# Node.js and npm for the browser end-to-end test (tests/integration/test_dev_server_browser.py):
# Debian's packages, but only when there is no node at all — a NodeSource (or other) node that is
# already installed is kept (its nodejs package bundles npm; Debian's npm would conflict with it).
if ! command -v node >/dev/null 2>&1; then PKGS+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1 && dpkg-query -W -f='${Version}' nodejs 2>/dev/null | grep -q deb12; then PKGS+=(npm)
fi

missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
bpo_ok=1
dpkg-query -W -f='${Version}' catch2 2>/dev/null | grep -q '^3\.' || bpo_ok=0
dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null | grep -Eq '^1:(1[0-9]|[2-9][0-9])\.' || bpo_ok=0

if [ ${#missing[@]} -eq 0 ] && [ $bpo_ok = 1 ]; then exit 0; fi

if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  cat > "$BACKPORTS" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
[ ${#missing[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing[@]}"
[ $bpo_ok = 1 ] || apt-get install -y -qq --no-install-recommends -t bookworm-backports "${BPO_PKGS[@]}"
