#!/usr/bin/env bash
# Builds release binaries and runs the benchmarks against dockerd in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
if ! command -v dockerd >/dev/null; then
    echo "installing Debian's docker.io as the peer to measure against"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
cargo build --release --locked
exec python3 bench/bench.py "$@"
