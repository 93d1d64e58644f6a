"""Read the kernel's own view of what the integration tests did (not through Ansible), and what
this host can do: tests pick their expectation from these probes, or skip with the reason.

Nothing here goes through the collection's code, so a probe cannot agree with a bug."""
import contextlib
import datetime
import os
import subprocess
import sys
import time
import uuid

CAP_SYS_RESOURCE = 24
V1_MEMCG = '/sys/fs/cgroup/memory'
CGROUP2_ROOTS = ('/sys/fs/cgroup', '/sys/fs/cgroup/unified')


def vmstat_oom_kill():
    """The kernel's count of OOM kills since boot (/proc/vmstat oom_kill), or None."""
    with open('/proc/vmstat') as handle:
        for line in handle:
            if line.startswith('oom_kill '):
                return int(line.split()[1])
    return None


def _mounts():
    with open('/proc/self/mounts') as handle:
        return [line.split()[:3] for line in handle]


def v1_memcg_root():
    """The cgroup v1 memory hierarchy's mount point, or None (unified hosts, v1 memory not mounted)."""
    for _dev, point, fstype in _mounts():
        if fstype == 'cgroup' and os.path.exists(os.path.join(point, 'memory.limit_in_bytes')):
            return point
    return None


def v2_memcg_root():
    """The cgroup2 mount whose children can get memory limits, or None."""
    for _dev, point, fstype in _mounts():
        if fstype != 'cgroup2':
            continue
        try:
            with open(os.path.join(point, 'cgroup.subtree_control')) as handle:
                if 'memory' in handle.read().split():
                    return point
        except OSError:
            pass
    return None


def cgroup_layout():
    """'v1' (cgroup v1 only), 'hybrid' (v1 hierarchies plus a cgroup2 mount) or 'v2' (unified)."""
    fstypes = {fstype for _dev, _point, fstype in _mounts()}
    if 'cgroup' in fstypes:
        return 'hybrid' if 'cgroup2' in fstypes else 'v1'
    return 'v2'


def has_cap_sys_resource():
    """Whether this process may lower oom_score_adj below 0 (CAP_SYS_RESOURCE effective)."""
    with open('/proc/self/status') as handle:
        for line in handle:
            if line.startswith('CapEff:'):
                return bool(int(line.split()[1], 16) >> CAP_SYS_RESOURCE & 1)
    return False


def systemd_is_pid1():
    """systemd's own test (sd_booted): /run/systemd/system exists only when systemd is PID 1."""
    return os.path.isdir('/run/systemd/system')


def active_swap():
    """Paths of the swap areas the kernel is using now (/proc/swaps)."""
    with open('/proc/swaps') as handle:
        return [line.split()[0] for line in handle.read().splitlines()[1:] if line.strip()]


def swappiness_max():
    """The highest vm.swappiness this kernel accepts (200 since Linux 5.8, 100 before), probed by
    writing 200 and putting the value back."""
    path = '/proc/sys/vm/swappiness'
    with open(path) as handle:
        before = handle.read()
    try:
        with open(path, 'w') as handle:
            handle.write('200\n')
    except OSError:
        return 100
    finally:
        with open(path, 'w') as handle:
            handle.write(before)
    return 200


def limit_memcg(path, limit):
    """Give the memory cgroup at ``path`` a hard limit of ``limit`` bytes that swap cannot soften:
    on an active swapfile a process over its limit would swap instead of being OOM-killed.
    v1: memory.limit_in_bytes and memory.memsw.limit_in_bytes (or memory.swappiness 0 when swap
    accounting is off); v2: memory.max and memory.swap.max 0."""
    def write(name, value):
        with open(os.path.join(path, name), 'w') as handle:
            handle.write('%s\n' % value)
    if os.path.exists(os.path.join(path, 'memory.limit_in_bytes')):
        write('memory.limit_in_bytes', limit)
        if os.path.exists(os.path.join(path, 'memory.memsw.limit_in_bytes')):
            write('memory.memsw.limit_in_bytes', limit)
        else:
            write('memory.swappiness', 0)
    else:
        write('memory.max', limit)
        if os.path.exists(os.path.join(path, 'memory.swap.max')):
            write('memory.swap.max', 0)


def memcg_root():
    """Where a test can create a memory cgroup: the v1 memory hierarchy, else a cgroup2 mount with
    the memory controller; None when neither exists (skip with that reason)."""
    return v1_memcg_root() or v2_memcg_root()


# Touches every page of 200 MiB once it is told to go (after it was moved into its cgroup).
HOG = 'import sys; sys.stdin.readline(); b = bytearray(200 * 1024 * 1024); b[::4096] = b"x" * (len(b) // 4096)'


@contextlib.contextmanager
def memcg_oom_kill(root, prefix):
    """Kill a python3 process for real in a new 64M memory cgroup below ``root`` (memory+swap
    limited, see limit_memcg); yield {'pid', 'cgroup' (below root, with a leading /), 'before'
    (vmstat oom_kill before), 'started' (UTC, a second early)}. The cgroup is removed afterwards,
    also on failure."""
    name = '%s-%s' % (prefix, uuid.uuid4().hex[:8])
    cgroup = os.path.join(root, name)
    os.mkdir(cgroup)
    proc = None
    try:
        limit_memcg(cgroup, 64 * 1024 * 1024)
        before = vmstat_oom_kill()
        started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(seconds=1)
        proc = subprocess.Popen([sys.executable, '-c', HOG], stdin=subprocess.PIPE)
        with open(os.path.join(cgroup, 'cgroup.procs'), 'w') as handle:
            handle.write(str(proc.pid))
        proc.stdin.write(b'go\n')
        proc.stdin.close()
        rc = proc.wait(30)
        assert rc == -9, 'the hog was expected to be OOM-killed (SIGKILL), it ended with %r' % rc
        time.sleep(0.2)  # the oom_reaper line follows the kill line
        yield {'pid': proc.pid, 'cgroup': '/' + name, 'before': before, 'started': started}
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for _attempt in range(50):
            try:
                os.rmdir(cgroup)
                break
            except OSError:
                time.sleep(0.1)
        assert not os.path.exists(cgroup), 'test cgroup %s could not be removed' % cgroup
