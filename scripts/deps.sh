#!/usr/bin/env bash
# scripts/deps.sh -- install the Debian packages weir needs to build and test.
#
# Idempotent: when every package is present it prints nothing and changes
# nothing. Otherwise it runs `apt-get update` once, then installs only what is
# missing. Needs root (or sudo) only when something is missing.
#
#   WEIR_DEPS_EXTRA="pkg ..."  install these too
set -euo pipefail

pkgs=(
    build-essential meson ninja-build pkg-config
    librdkafka-dev libuv1-dev libmsgpack-dev librocksdb-dev libcmocka-dev
    libfyaml-dev libcurl4-openssl-dev libjansson-dev libxxhash-dev
    libhttp-parser-dev libjsmn-dev libpq-dev
    postgresql curl procps
    chromium fonts-dejavu-core
)
# shellcheck disable=SC2206
pkgs+=(${WEIR_DEPS_EXTRA:-})

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps.sh: need root to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
