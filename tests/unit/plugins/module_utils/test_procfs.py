"""The /proc and cgroup readers, against fake trees laid out as the kernel lays them out."""
import os

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import procfs
from faketree import write

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), 'fixtures', 'proc')


@pytest.fixture
def fake(tmp_path):
    write(tmp_path, '/proc/meminfo', open(os.path.join(FIXTURES, 'meminfo')).read())
    return tmp_path


def test_meminfo_real_layout(fake):
    info = procfs.read_meminfo(str(fake))
    assert info['MemTotal'] > info['MemAvailable'] > 0
    assert 'SwapTotal' in info and 'Committed_AS' in info and 'CommitLimit' in info
    assert isinstance(info['HugePages_Total'], int)


def test_meminfo_is_required(tmp_path):
    with pytest.raises(procfs.ProcError) as caught:
        procfs.read_meminfo(str(tmp_path))
    assert str(tmp_path) in str(caught.value) and 'meminfo' in str(caught.value)


def test_swaps_with_escaped_path_and_priorities(tmp_path):
    write(tmp_path, '/proc/swaps',
          'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n'
          '/swapfile                               file\t\t2097148\t\t1024\t\t-2\n'
          '/var/tmp/my\\040swap                     file\t\t65532\t\t0\t\t10\n'
          '/dev/dm-1                               partition\t8388604\t\t0\t\t-3\n'
          'garbage line\n')
    swaps = procfs.read_swaps(str(tmp_path))
    assert swaps == [
        {'path': '/swapfile', 'type': 'file', 'size_kb': 2097148, 'used_kb': 1024, 'priority': -2},
        {'path': '/var/tmp/my swap', 'type': 'file', 'size_kb': 65532, 'used_kb': 0, 'priority': 10},
        {'path': '/dev/dm-1', 'type': 'partition', 'size_kb': 8388604, 'used_kb': 0, 'priority': -3},
    ]


def test_swaps_empty_and_missing(tmp_path):
    write(tmp_path, '/proc/swaps', 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n')
    assert procfs.read_swaps(str(tmp_path)) == []
    os.unlink(os.path.join(str(tmp_path), 'proc', 'swaps'))
    warnings = []
    assert procfs.read_swaps(str(tmp_path), warn=warnings.append) == []
    assert len(warnings) == 1 and 'swaps' in warnings[0]


def test_vmstat(tmp_path):
    write(tmp_path, '/proc/vmstat', open(os.path.join(FIXTURES, 'vmstat')).read())
    stats = procfs.read_vmstat(str(tmp_path))
    assert 'oom_kill' in stats and isinstance(stats['oom_kill'], int)
    assert stats['nr_free_pages'] > 0


def test_vmstat_missing_is_a_warning(tmp_path):
    warnings = []
    assert procfs.read_vmstat(str(tmp_path), warn=warnings.append) is None
    assert 'vmstat' in warnings[0]


def test_pressure(tmp_path):
    write(tmp_path, '/proc/pressure/memory',
          'some avg10=1.25 avg60=0.50 avg300=0.10 total=123456\n'
          'full avg10=0.00 avg60=0.01 avg300=0.00 total=789\n')
    assert procfs.read_pressure(str(tmp_path)) == {
        'some': {'avg10': 1.25, 'avg60': 0.5, 'avg300': 0.1, 'total': 123456},
        'full': {'avg10': 0.0, 'avg60': 0.01, 'avg300': 0.0, 'total': 789}}


def test_pressure_absent_without_psi(tmp_path):
    warnings = []
    assert procfs.read_pressure(str(tmp_path), warn=warnings.append) is None
    assert warnings and 'pressure' in warnings[0]


def test_pid_files(tmp_path):
    # A comm with spaces and a ')' must not shift the fields that follow it.
    stat = ('4242 (GC Thread#9) x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 12 0 '
            '98765 123456789 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n')
    write(tmp_path, '/proc/4242/stat', stat)
    write(tmp_path, '/proc/4242/status', 'Name:\tGC Thread#9 x))\nVmRSS:\t   10240 kB\nVmSwap:\t       0 kB\nPPid:\t1\n')
    write(tmp_path, '/proc/4242/cmdline', 'java\0-Xmx2g\0-jar\0app.jar\0')
    write(tmp_path, '/proc/4242/oom_score', '667\n')
    write(tmp_path, '/proc/4242/oom_score_adj', '-900\n')
    write(tmp_path, '/proc/4242/cgroup', '12:memory:/system.slice/app.service\n1:name=systemd:/system.slice/app.service\n'
                                         '0::/system.slice/app.service\n')
    root = str(tmp_path)
    parsed = procfs.read_pid_stat(4242, root)
    assert parsed == {'pid': 4242, 'comm': 'GC Thread#9) x)', 'state': 'S', 'ppid': 1, 'pgrp': 4242,
                      'flags': 4194560, 'starttime': 98765, 'rss_pages': 2560}
    assert not procfs.is_kernel_thread(parsed)
    status = procfs.read_pid_status(4242, root)
    assert status['VmRSS_kb'] == 10240 and status['Name'] == 'GC Thread#9 x))'
    assert procfs.read_pid_cmdline(4242, root) == ['java', '-Xmx2g', '-jar', 'app.jar']
    assert procfs.read_pid_oom_score(4242, root) == 667
    assert procfs.read_pid_oom_score_adj(4242, root) == -900
    entries = procfs.read_pid_cgroup(4242, root)
    assert entries[0] == {'id': 12, 'controllers': ['memory'], 'path': '/system.slice/app.service'}
    assert procfs.memory_cgroup_of(entries) == '/system.slice/app.service'
    assert procfs.memory_cgroup_of([{'id': 0, 'controllers': [], 'path': '/user.slice'}]) == '/user.slice'
    assert procfs.list_pids(root) == [4242]


def test_kernel_thread_by_flag_and_parent():
    kthread = procfs.parse_pid_stat('57 (kworker/1:1-events) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 '
                                    '300 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 1 0 0 0 0 0')
    assert procfs.is_kernel_thread(kthread)
    kthreadd = dict(kthread, pid=2, ppid=0, flags=0)
    assert procfs.is_kernel_thread(kthreadd)


def test_vanished_process_is_process_gone(tmp_path):
    os.makedirs(os.path.join(str(tmp_path), 'proc'))
    with pytest.raises(procfs.ProcessGone):
        procfs.read_pid_stat(99999, str(tmp_path))
    with pytest.raises(procfs.ProcessGone):
        procfs.read_pid_oom_score_adj(99999, str(tmp_path))


def test_bad_number_names_the_path(tmp_path):
    write(tmp_path, '/proc/7/oom_score_adj', 'junk\n')
    with pytest.raises(procfs.ProcError) as caught:
        procfs.read_pid_oom_score_adj(7, str(tmp_path))
    assert 'oom_score_adj' in str(caught.value) and 'junk' in str(caught.value)


def test_real_machine_self():
    me = procfs.read_pid_stat(os.getpid())
    assert me['pid'] == os.getpid() and me['ppid'] == os.getppid()
    assert -1000 <= procfs.read_pid_oom_score_adj(os.getpid()) <= 1000


def test_mounts_and_mount_of(tmp_path):
    write(tmp_path, '/proc/mounts', '/dev/vda / ext4 rw,relatime 0 0\n'
                                    'tmpfs /var/tmp/ram tmpfs rw 0 0\n'
                                    '/dev/sdb1 /srv/my\\040data xfs rw 0 0\n'
                                    'server:/x /srv/nfs nfs4 rw 0 0\n')
    mounts = procfs.read_mounts(str(tmp_path))
    assert mounts[2]['mountpoint'] == '/srv/my data'
    assert procfs.mount_of('/swapfile', mounts)['fstype'] == 'ext4'
    assert procfs.mount_of('/var/tmp/ram/swap', mounts)['fstype'] == 'tmpfs'
    assert procfs.mount_of('/var/tmp/ramdisk', mounts)['fstype'] == 'ext4'
    assert procfs.mount_of('/srv/my data/s', mounts)['fstype'] == 'xfs'
    assert procfs.mount_of('/srv/nfs', mounts)['fstype'] == 'nfs4'


def layout(tmp_path, mounts, controllers=None):
    write(tmp_path, '/proc/mounts', mounts)
    if controllers is not None:
        write(tmp_path, '/sys/fs/cgroup/cgroup.controllers', controllers)
    return procfs.detect_cgroup_layout(str(tmp_path))


def test_layout_hybrid_of_this_machine(tmp_path):
    found = layout(tmp_path, open(os.path.join(FIXTURES, 'mounts-hybrid')).read())
    write(tmp_path, '/sys/fs/cgroup/unified/cgroup.controllers', '\n')
    found = procfs.detect_cgroup_layout(str(tmp_path))
    assert found == {'layout': 'hybrid', 'memory_version': 'v1',
                     'memory_root': os.path.join(str(tmp_path), 'sys/fs/cgroup/memory'),
                     'unified_root': os.path.join(str(tmp_path), 'sys/fs/cgroup/unified')}


def test_layout_pure_v2(tmp_path):
    found = layout(tmp_path, 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n',
                   'cpuset cpu io memory hugetlb pids rdma misc\n')
    assert found['layout'] == 'v2' and found['memory_version'] == 'v2'
    assert found['memory_root'] == os.path.join(str(tmp_path), 'sys/fs/cgroup')


def test_layout_v2_without_memory_controller(tmp_path):
    found = layout(tmp_path, 'cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n', 'cpu io pids\n')
    assert found['layout'] == 'v2' and found['memory_version'] is None and found['memory_root'] is None


def test_layout_pure_v1(tmp_path):
    found = layout(tmp_path, 'tmpfs /sys/fs/cgroup tmpfs rw 0 0\n'
                             'cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n'
                             'cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,memory 0 0\n')
    assert found['layout'] == 'v1' and found['memory_version'] == 'v1' and found['unified_root'] is None


def test_layout_none(tmp_path):
    found = layout(tmp_path, '/dev/vda / ext4 rw 0 0\n')
    assert found == {'layout': None, 'memory_version': None, 'memory_root': None, 'unified_root': None}


def test_sysctl_and_boot_time(tmp_path):
    write(tmp_path, '/proc/sys/vm/swappiness', '60\n')
    write(tmp_path, '/proc/sys/kernel/core_pattern', 'core\n')
    write(tmp_path, '/proc/stat', 'cpu  1 2 3\nbtime 1795627687\nprocesses 4\n')
    root = str(tmp_path)
    assert procfs.read_sysctl('vm.swappiness', root) == 60
    assert procfs.read_sysctl('kernel.core_pattern', root) == 'core'
    warnings = []
    assert procfs.read_sysctl('vm.watermark_boost_factor', root, warn=warnings.append) is None and warnings
    assert procfs.read_boot_time(root) == 1795627687


def test_memcg_oom_counters_v2(tmp_path):
    base = '/sys/fs/cgroup'
    write(tmp_path, base + '/cgroup.controllers', 'cpu memory pids\n')
    write(tmp_path, base + '/system.slice/memory.events', 'low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n')
    write(tmp_path, base + '/system.slice/app.service/memory.events', 'low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\n')
    write(tmp_path, base + '/user.slice/memory.events', 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n')
    write(tmp_path, '/proc/mounts', 'cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n')
    found = procfs.read_memcg_oom_counters(procfs.detect_cgroup_layout(str(tmp_path)))
    assert found == [{'path': '/system.slice', 'oom': 3, 'oom_kill': 2},
                     {'path': '/system.slice/app.service', 'oom': 3, 'oom_kill': 2}]


def test_memcg_oom_counters_v1(tmp_path):
    base = '/sys/fs/cgroup/memory'
    write(tmp_path, base + '/memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n')
    write(tmp_path, base + '/batch/memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 4\n')
    write(tmp_path, '/proc/mounts', 'cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n')
    found = procfs.read_memcg_oom_counters(procfs.detect_cgroup_layout(str(tmp_path)))
    assert found == [{'path': '/batch', 'oom': None, 'oom_kill': 4}]
    assert procfs.read_memcg_oom_counters({'memory_root': None}) == []
