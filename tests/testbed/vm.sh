#!/usr/bin/env bash
# The VM testbed: Debian 12 with systemd as PID 1, cgroup v2 (memory controller), journald keeping
# kernel messages, root with every capability, sshd; booted with qemu under TCG (no KVM needed).
#
#   vm.sh build               build the disk image if its recipe changed; print the cache directory
#   vm.sh start [NAME]        (build, then) boot VM NAME (default oomguard-vm), wait for SSH;
#                             print its run directory (ssh_config, inventory.ini, key, console.log)
#   vm.sh stop [NAME]         power it off and delete its run directory (no error if not running)
#   vm.sh ssh [NAME] [CMD..]  run CMD (or a shell) in the VM as root
#   vm.sh status [NAME]       exit 0 when VM NAME answers on SSH
#
# The image is built from Debian packages only: the debootstrap base of systemd-container.sh, plus
# vm/Containerfile (kernel, systemd, sshd, python3) built with podman, exported into a raw ext4
# image. It is cached in $OOMGUARD_TESTBED_CACHE (/var/cache/oomguard-testbed) under a hash of its
# recipe (vm/ and the recipe version below), so only a changed recipe rebuilds it. Each run boots
# a copy-on-write overlay of it (the cached image is never written), with an SSH key made for the
# run and passed on the kernel command line, and sshd forwarded to a free port on 127.0.0.1.
# Needs root (podman, mkfs.ext4 -d with ownership). Installs what is missing with apt-get.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF="$here/containers.conf"
cache=${OOMGUARD_TESTBED_CACHE:-/var/cache/oomguard-testbed}
runs=${OOMGUARD_VM_RUNS:-/run/oomguard-testbed}
boot_timeout=${OOMGUARD_VM_BOOT_TIMEOUT:-420}
memory=${OOMGUARD_VM_MEMORY:-1024}
cpus=${OOMGUARD_VM_CPUS:-2}
disk_size=3G
# Bump when the way the image is made from the container (below) changes.
recipe_version=1

say() { echo "vm: $*" >&2; }
die() { say "$*"; exit 1; }

need_tools() {
    local missing=()
    command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
    command -v qemu-img >/dev/null || missing+=(qemu-utils)
    command -v ssh >/dev/null || missing+=(openssh-client)
    command -v ssh-keygen >/dev/null || missing+=(openssh-client)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} with apt-get"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

recipe_hash() {
    ( echo "recipe $recipe_version size $disk_size"
      cd "$here/vm" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
      # the file modes matter too (the key script must stay executable)
      find . -type f -printf '%m %p\n' | LC_ALL=C sort
    ) | sha256sum | cut -c1-12
}

image_dir() { echo "$cache/vm-$(recipe_hash)"; }

build() {
    [ "$(id -u)" = 0 ] || die "needs root (podman storage, mkfs.ext4 with file ownership)"
    need_tools
    local dir ref cid tree
    dir=$(image_dir)
    if [ -s "$dir/rootfs.img" ]; then
        echo "$dir"
        return
    fi
    # The base (debootstrap) and its lock come from the container testbed's script.
    "$here/systemd-container.sh" base >/dev/null
    mkdir -p "$cache"
    exec 8>"$cache/vm-build.lock"
    flock 8
    if [ -s "$dir/rootfs.img" ]; then
        echo "$dir"
        return
    fi
    ref="localhost/oomguard-vm:$(recipe_hash)"
    say "building $ref (kernel, systemd, sshd; about 2 minutes, once per recipe)"
    podman build --network host -q -t "$ref" "$here/vm" >/dev/null
    tree=$(mktemp -d "$cache/vm-tree.XXXXXX")
    cid=$(podman create "$ref" /bin/true)
    # Container runtimes bind-mount these over the image: put real files in the VM's tree.
    podman export "$cid" | tar -C "$tree" -x --numeric-owner
    podman rm "$cid" >/dev/null
    rm -f "$tree/etc/hostname" "$tree/etc/hosts" "$tree/etc/resolv.conf"
    echo oomguard-vm > "$tree/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 oomguard-vm\n::1 localhost ip6-localhost ip6-loopback\n' > "$tree/etc/hosts"
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp"
    cp "$(ls "$tree"/boot/vmlinuz-* | head -1)" "$dir.tmp/vmlinuz"
    cp "$(ls "$tree"/boot/initrd.img-* | head -1)" "$dir.tmp/initrd.img"
    truncate -s "$disk_size" "$dir.tmp/rootfs.img"
    mkfs.ext4 -q -F -L oomguard-vm -d "$tree" "$dir.tmp/rootfs.img"
    rm -rf "$tree"
    podman rmi "$ref" >/dev/null 2>&1 || true
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
    say "image cached in $dir"
    echo "$dir"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ssh_run() {
    local run=$1
    shift
    ssh -F "$run/ssh_config" oomguard-vm "$@"
}

alive() {
    local run=$1
    [ -s "$run/qemu.pid" ] && kill -0 "$(cat "$run/qemu.pid")" 2>/dev/null
}

start() {
    local name=$1 dir run port key
    dir=$(build)
    run="$runs/$name"
    stop "$name"
    mkdir -p "$run"
    chmod 700 "$run"
    ssh-keygen -q -t ed25519 -N '' -C "oomguard-testbed-$name" -f "$run/id_ed25519"
    key=$(base64 -w0 < "$run/id_ed25519.pub")
    qemu-img create -q -f qcow2 -F raw -b "$dir/rootfs.img" "$run/disk.qcow2"
    port=$(free_port)
    echo "$port" > "$run/port"
    cat > "$run/ssh_config" <<EOF
Host oomguard-vm $name
    HostName 127.0.0.1
    Port $port
    User root
    IdentityFile $run/id_ed25519
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    ConnectTimeout 20
    BatchMode yes
EOF
    # For Ansible: one host in group vm (ssh with the run's key; control sockets in the run dir).
    cat > "$run/inventory.ini" <<EOF
[vm]
$name ansible_host=127.0.0.1 ansible_port=$port ansible_user=root ansible_ssh_private_key_file=$run/id_ed25519 ansible_python_interpreter=/usr/bin/python3 ansible_ssh_args='-o ControlMaster=auto -o ControlPersist=300s -o ControlPath=$run/cp-%C' ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes' ansible_ssh_pipelining=true
EOF
    say "booting $name (qemu TCG, ${memory} MiB, $cpus vCPUs, ssh on 127.0.0.1:$port)"
    qemu-system-x86_64 -accel tcg -m "$memory" -smp "$cpus" -name "$name" \
        -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 net.ifnames=0 modprobe.blacklist=powernow_k8,kvm_amd,kvm_intel,kvm systemd.mask=systemd-binfmt.service systemd.mask=proc-sys-fs-binfmt_misc.automount oomguard.authorized_key=$key" \
        -drive "file=$run/disk.qcow2,format=qcow2,if=virtio" \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=n0 \
        -display none -monitor none -serial "file:$run/console.log" \
        -daemonize -pidfile "$run/qemu.pid"
    local started=$SECONDS
    while [ $((SECONDS - started)) -lt "$boot_timeout" ]; do
        if ! alive "$run"; then
            tail -30 "$run/console.log" >&2 || true
            die "$name: qemu exited during boot (console above, full log in $run/console.log)"
        fi
        if ssh_run "$run" -o ConnectTimeout=5 true 2>/dev/null; then
            say "$name answers on ssh after $((SECONDS - started))s"
            echo "$run"
            return
        fi
        sleep 2
    done
    tail -30 "$run/console.log" >&2 || true
    stop "$name"
    die "$name: no SSH answer on 127.0.0.1:$port within ${boot_timeout}s (OOMGUARD_VM_BOOT_TIMEOUT); console above"
}

stop() {
    local run="$runs/$1" pid i
    [ -d "$run" ] || return 0
    if alive "$run"; then
        pid=$(cat "$run/qemu.pid")
        # A clean poweroff keeps nothing we need (the overlay is thrown away): just end qemu.
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$run"
}

name=${2:-oomguard-vm}
case "${1:-}" in
    build) build ;;
    start) start "$name" ;;
    stop) stop "$name" ;;
    ssh) run="$runs/$name"; [ -d "$run" ] || die "$name is not running"; shift 2 || shift; ssh_run "$run" "$@" ;;
    status) alive "$runs/$name" && ssh_run "$runs/$name" true ;;
    *) die "usage: $0 {build|start [NAME]|stop [NAME]|ssh [NAME] [CMD...]|status [NAME]}" ;;
esac
