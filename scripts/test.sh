#!/usr/bin/env bash
# Runs every test: formatting, unit tests, and the end-to-end suite that starts real
# berthd processes and drives them with our CLI, the docker CLI and docker-py.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh
if [ "$(id -u)" != 0 ]; then
    echo "the end-to-end tests need root (namespaces, mounts)" >&2
    exit 1
fi

cargo fmt --all -- --check
cargo build --workspace --locked
cargo test --workspace --locked -q 2>&1 | tail -n 50
test "${PIPESTATUS[0]}" -eq 0

python3 -m pytest -q tests/e2e "$@"
