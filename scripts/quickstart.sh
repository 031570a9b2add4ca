#!/usr/bin/env bash
# From a fresh clone to a running berth: installs what it needs, builds, starts berthd
# (if it is not already running), imports a busybox image from Debian's busybox-static,
# lists it, and runs a container from it.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh
cargo build --release --locked
install -m 0755 target/release/berthd target/release/berth target/release/berth-shim /usr/local/bin/

SOCK=/run/berth/berth.sock
# Where systemd runs, berthd is a socket-activated service; elsewhere it is started
# directly in the background.
if [ -d /run/systemd/system ]; then
    install -m 0644 contrib/systemd/berth.service contrib/systemd/berth.socket /etc/systemd/system/
    systemctl daemon-reload
    systemctl enable --now berth.socket berth.service
    LOG="journalctl -u berth"
else
    LOG=/var/log/berthd.log
fi
if ! berth version >/dev/null 2>&1; then
    mkdir -p /var/log
    nohup berthd >>/var/log/berthd.log 2>&1 &
    for _ in $(seq 1 100); do
        berth version >/dev/null 2>&1 && break
        sleep 0.05
    done
fi
berth version >/dev/null || { echo "berthd did not start; see $LOG" >&2; exit 1; }

if [ -z "$(berth images -q busybox:latest)" ]; then
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,root}
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\n' >"$rootfs/etc/group"
    tar -C "$rootfs" -c . | berth import -c 'CMD ["sh"]' - busybox:latest
fi
berth image ls
echo "berthd is running on unix://$SOCK (logs: $LOG)"
berth run --rm busybox ps aux
