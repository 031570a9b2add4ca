#!/usr/bin/env bash
# Installs what berth's build, quick start and tests need. Idempotent: installs only
# what is missing, so it is cheap to run every time.
set -euo pipefail

APT_PACKAGES=(busybox-static skopeo zstd xz-utils docker-registry docker-compose iproute2 iptables openssl curl tini libseccomp-dev pkg-config systemd)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py_missing=()
python3 -c 'import pytest' 2>/dev/null || py_missing+=(pytest)
python3 -c 'import docker' 2>/dev/null || py_missing+=(docker)
if ((${#py_missing[@]})); then
    echo "installing python packages: ${py_missing[*]}"
    python3 -m pip install -q "${py_missing[@]}"
fi
