#!/usr/bin/env bash
# The systemd container testbed: a local Debian 12 image that boots systemd as PID 1 under podman.
#
#   systemd-container.sh base           make the Debian 12 base image if needed; print its reference
#   systemd-container.sh build          build the image if needed; print its reference
#   systemd-container.sh start NAME     (build, then) start container NAME, wait for systemd
#   systemd-container.sh stop NAME      remove container NAME (no error if it is not there)
#
# Caching: the debootstrap tree is kept as a tarball in $OOMGUARD_TESTBED_CACHE
# (/var/cache/oomguard-testbed), imported once as localhost/oomguard-debian:bookworm; the systemd
# image is tagged with a hash of everything in image/ and rebuilt only when that changes.
# No registry is reachable on the CI machines, so nothing is pulled. Needs root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF="$here/containers.conf"
cache=${OOMGUARD_TESTBED_CACHE:-/var/cache/oomguard-testbed}
mirror=${OOMGUARD_TESTBED_MIRROR:-http://deb.debian.org/debian}
base=localhost/oomguard-debian:bookworm
repo=localhost/oomguard-systemd
boot_timeout=${OOMGUARD_TESTBED_BOOT_TIMEOUT:-90}

say() { echo "systemd-container: $*" >&2; }
die() { say "$*"; exit 1; }

need_tools() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} with apt-get"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap >/dev/null
    fi
}

image_ref() {
    local sum
    sum=$(cd "$here/image" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
    echo "$repo:$sum"
}

# The debootstrap base, imported as $base (also the base of the VM testbed, tests/testbed/vm.sh).
# Callers hold the build lock.
ensure_base() {
    if ! podman image exists "$base"; then
        if [ ! -s "$cache/bookworm-minbase.tar" ]; then
            say "debootstrap bookworm (minbase) into $cache (about 40 s, once)"
            rm -rf "$cache/rootfs.tmp"
            debootstrap --variant=minbase bookworm "$cache/rootfs.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
                || die "debootstrap failed; see $cache/debootstrap.log"
            tar -C "$cache/rootfs.tmp" -cf "$cache/bookworm-minbase.tar.tmp" .
            mv "$cache/bookworm-minbase.tar.tmp" "$cache/bookworm-minbase.tar"
            rm -rf "$cache/rootfs.tmp"
        fi
        say "importing $base"
        podman import "$cache/bookworm-minbase.tar" "$base" >/dev/null
    fi
}

lock_cache() {
    [ "$(id -u)" = 0 ] || die "needs root (podman storage and debootstrap)"
    need_tools
    mkdir -p "$cache"
    # Two test runs (or two engineers) building at once would race on the cache: serialise.
    exec 9>"$cache/build.lock"
    flock 9
}

base() {
    lock_cache
    ensure_base
    echo "$base"
}

build() {
    local ref
    ref=$(image_ref)
    lock_cache
    if podman image exists "$ref"; then
        echo "$ref"
        return
    fi
    ensure_base
    say "building $ref"
    podman build --network host -q -t "$ref" "$here/image" >/dev/null
    echo "$ref"
}

start() {
    local name=$1 ref state i
    ref=$(build)
    podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
    # --network none: tests reach the container through podman exec only, never the network.
    # Not --privileged: systemd does not need it, and /proc/sys stays read-only (the kernel is shared).
    podman run -d --name "$name" --hostname "$name" --network none \
        --systemd=always "$ref" /sbin/init >/dev/null
    for i in $(seq 1 "$boot_timeout"); do
        state=$(podman exec "$name" systemctl is-system-running 2>/dev/null || true)
        case "$state" in
            running|degraded)
                say "$name is up ($state after ${i}s)"
                echo "$name"
                return ;;
        esac
        sleep 1
    done
    say "$name did not finish booting in ${boot_timeout}s (state: ${state:-none})"
    podman exec "$name" systemctl --failed --no-pager >&2 || true
    podman logs "$name" 2>&1 | tail -20 >&2 || true
    exit 1
}

stop() {
    podman rm -f -t 0 "$1" >/dev/null 2>&1 || true
}

case "${1:-}" in
    base) base ;;
    build) build ;;
    start) [ -n "${2:-}" ] || die "usage: $0 start NAME"; start "$2" ;;
    stop) [ -n "${2:-}" ] || die "usage: $0 stop NAME"; stop "$2" ;;
    *) die "usage: $0 {base|build|start NAME|stop NAME}" ;;
esac
