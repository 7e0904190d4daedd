#!/usr/bin/env bash
# Install the Debian 12 packages Callgate and its test suite need, only when missing.
# Idempotent: when everything is installed it touches nothing (no apt-get update).
set -euo pipefail

PACKAGES=(
    postgresql      # server (15 on Debian 12) for the PostgreSQL test run
    chromium        # /usr/bin/chromium, driven by playwright in the browser tests
    baresip-core    # scripted softphone peers
    sip-tester      # sipp
    sox             # tones and recording analysis
    libspandsp2     # T.30 fax through ctypes
    ghostscript     # PDF <-> TIFF for fax
    libtiff-tools   # tiffinfo / tiffcmp
    wrk             # HTTP load for bench
)

is_installed() {
    local status
    status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)"
    [[ "$status" == "install ok installed" ]]
}

echo "system-deps: checking ${#PACKAGES[@]} Debian packages"
missing=()
for pkg in "${PACKAGES[@]}"; do
    if is_installed "$pkg"; then
        echo "system-deps: ok        $pkg"
    else
        echo "system-deps: missing   $pkg"
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "system-deps: all packages present, nothing to do"
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "system-deps: ERROR: missing packages: ${missing[*]}" >&2
    echo "system-deps: run as root (sudo make system-deps) or install them with:" >&2
    echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "system-deps: apt-get update"
apt-get update -q
echo "system-deps: apt-get install ${missing[*]}"
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null

still_missing=()
for pkg in "${missing[@]}"; do
    is_installed "$pkg" || still_missing+=("$pkg")
done
if [[ ${#still_missing[@]} -ne 0 ]]; then
    echo "system-deps: ERROR: still missing after install: ${still_missing[*]}" >&2
    exit 1
fi
echo "system-deps: installed ${missing[*]}"
