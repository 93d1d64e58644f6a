#!/usr/bin/env bash
# The fleet testbed: the VM (vm.sh) plus one podman container per Debian release (11 with systemd,
# 12 without systemd, 13 with systemd), described together with this machine by fleet.yml.
#
#   fleet.sh build     build the container images (and the VM image) when their recipe changed
#   fleet.sh start     start the containers and the VM (names fixed: see fleet.yml); members
#                      already running from the current images are kept as they are
#   fleet.sh stop      remove the containers and stop the VM (no error when not running)
#
# Base images: `debootstrap --variant=minbase RELEASE` from the Debian mirror, kept as a tarball in
# $OOMGUARD_TESTBED_CACHE (/var/cache/oomguard-testbed) and imported as
# localhost/oomguard-debian:RELEASE; images are tagged with a hash of fleet/. Needs root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF="$here/containers.conf"
cache=${OOMGUARD_TESTBED_CACHE:-/var/cache/oomguard-testbed}
mirror=${OOMGUARD_TESTBED_MIRROR:-http://deb.debian.org/debian}
boot_timeout=${OOMGUARD_TESTBED_BOOT_TIMEOUT:-120}
vm_name=oomguard-fleet-vm
# name release systemd
members=(
    "oomguard-fleet-deb11 bullseye yes"
    "oomguard-fleet-deb12 bookworm no"
    "oomguard-fleet-deb13 trixie yes"
)

say() { echo "fleet: $*" >&2; }
die() { say "$*"; exit 1; }

base() {
    local release=$1 ref=localhost/oomguard-debian:$1
    if [ "$release" = bookworm ]; then
        "$here/systemd-container.sh" base >/dev/null
        return
    fi
    podman image exists "$ref" && return
    if [ ! -s "$cache/$release-minbase.tar" ]; then
        say "debootstrap $release (minbase) into $cache (about 40 s, once)"
        rm -rf "$cache/$release.tmp"
        debootstrap --variant=minbase "$release" "$cache/$release.tmp" "$mirror" >"$cache/debootstrap-$release.log" 2>&1 \
            || die "debootstrap $release failed; see $cache/debootstrap-$release.log"
        tar -C "$cache/$release.tmp" -cf "$cache/$release-minbase.tar.tmp" .
        mv "$cache/$release-minbase.tar.tmp" "$cache/$release-minbase.tar"
        rm -rf "$cache/$release.tmp"
    fi
    podman import "$cache/$release-minbase.tar" "$ref" >/dev/null
}

image_ref() {
    local sum
    sum=$(cd "$here/fleet" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
    echo "localhost/oomguard-fleet:$1-systemd-$2-$sum"
}

build() {
    [ "$(id -u)" = 0 ] || die "needs root (podman storage and debootstrap)"
    "$here/systemd-container.sh" base >/dev/null   # installs podman, runc, debootstrap when missing
    mkdir -p "$cache"
    exec 9>"$cache/fleet-build.lock"
    flock 9
    local member name release systemd ref
    for member in "${members[@]}"; do
        read -r name release systemd <<<"$member"
        ref=$(image_ref "$release" "$systemd")
        podman image exists "$ref" && continue
        base "$release"
        say "building $ref"
        podman build --network host -q --build-arg RELEASE="$release" --build-arg SYSTEMD="$systemd" \
            -t "$ref" "$here/fleet" >/dev/null
    done
    "$here/vm.sh" build >/dev/null
}

start_container() {
    local name=$1 release=$2 systemd=$3 ref state i
    ref=$(image_ref "$release" "$systemd")
    if [ "$(podman container inspect -f '{{.State.Running}} {{.ImageName}}' "$name" 2>/dev/null)" = "true $ref" ]; then
        say "$name is already running"
        return
    fi
    podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
    # --network none: Ansible reaches the containers through podman exec only.
    if [ "$systemd" = yes ]; then
        podman run -d --name "$name" --hostname "$name" --network none --systemd=always "$ref" /sbin/init >/dev/null
    else
        podman run -d --name "$name" --hostname "$name" --network none "$ref" sleep infinity >/dev/null
        return
    fi
    for i in $(seq 1 "$boot_timeout"); do
        state=$(podman exec "$name" systemctl is-system-running 2>/dev/null || true)
        case "$state" in
            running|degraded) say "$name is up ($state after ${i}s)"; return ;;
        esac
        sleep 1
    done
    podman logs "$name" 2>&1 | tail -20 >&2 || true
    die "$name did not finish booting in ${boot_timeout}s (state: ${state:-none})"
}

start() {
    # In a subshell: the build lock (fd 9) must not leak into the containers and qemu.
    ( build )
    local member name release systemd
    for member in "${members[@]}"; do
        read -r name release systemd <<<"$member"
        start_container "$name" "$release" "$systemd"
    done
    if "$here/vm.sh" status "$vm_name" 2>/dev/null; then
        say "$vm_name is already running"
    else
        "$here/vm.sh" start "$vm_name" >/dev/null
    fi
    say "up: ${members[*]%% *} $vm_name (inventory: $here/fleet.yml)"
}

stop() {
    local member
    for member in "${members[@]}"; do
        podman rm -f -t 0 "${member%% *}" >/dev/null 2>&1 || true
    done
    "$here/vm.sh" stop "$vm_name"
}

case "${1:-}" in
    build) build ;;
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 {build|start|stop}" ;;
esac
