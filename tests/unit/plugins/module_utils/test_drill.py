"""The drill's confinements and checks on fake cgroup v1/v2 trees and a fake systemd, for what this
machine cannot run for real: cgroup v2 with systemd as PID 1 (a transient scope), a raw v2
cgroup, a kernel without swap accounting. The real kill on cgroup v1 is in
tests/integration/test_oom_drill.py."""
import os
import subprocess

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import drill
from ansible_collections.oomguard.memory.plugins.module_utils.processes import process_table
from faketree import write

M = 1024 * 1024
UNIT = 'oomguard-drill-0123abcd.scope'
SCOPE = '/system.slice/' + UNIT


def add(root, pid, comm, cgroup, adj=0, argv=None, start=100):
    fields = ['S', '1', str(pid), str(pid), '0', '-1', '0'] + ['0'] * 12 + [str(start), '0', '0']
    write(root, '/proc/%d/stat' % pid, '%d (%s) %s\n' % (pid, comm, ' '.join(fields)))
    write(root, '/proc/%d/cgroup' % pid, '0::%s\n' % cgroup)
    write(root, '/proc/%d/oom_score_adj' % pid, '%d\n' % adj)
    write(root, '/proc/%d/cmdline' % pid, '\0'.join(argv or ['/usr/bin/' + comm]) + '\0')


@pytest.fixture
def v2(tmp_path):
    """A cgroup v2 host with systemd as PID 1 and the memory and swap controllers."""
    root = str(tmp_path)
    write(root, '/run/systemd/system/.keep', '')
    write(root, '/sys/fs/cgroup/cgroup.controllers', 'cpuset cpu io memory pids\n')
    write(root, '/sys/fs/cgroup/cgroup.subtree_control', 'cpu io memory pids\n')
    write(root, '/sys/fs/cgroup/system.slice/memory.swap.max', 'max\n')
    write(root, '/sys/fs/cgroup/system.slice/memory.events', 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n')
    return root


def scope(root, swap_on=True, run=None):
    calls = []

    def fake_run(argv):
        calls.append(argv)
        return 0, 'LoadState=not-found\nActiveState=inactive\n', ''
    box = drill.SystemdScope(os.path.join(root, 'sys/fs/cgroup'), UNIT[:-6], 64 * M, swap_on, run or fake_run, root)
    box.calls = calls
    return box


def test_backend_choice():
    assert drill.choose_backend('auto', {'memory_version': 'v2'}, True) == 'systemd_scope'
    assert drill.choose_backend('auto', {'memory_version': 'v2'}, False) == 'cgroup_v2'
    assert drill.choose_backend('auto', {'memory_version': 'v1'}, True) == 'cgroup_v1'
    assert drill.choose_backend('cgroup_v1', {'memory_version': 'v2'}, True) == 'cgroup_v1'


def test_scope_preflight_passes_on_v2_with_systemd(v2):
    assert scope(v2).preflight() == []


def test_scope_preflight_names_each_missing_piece(v2):
    os.remove(os.path.join(v2, 'run/systemd/system/.keep'))
    os.rmdir(os.path.join(v2, 'run/systemd/system'))
    assert any('systemd is not PID 1' in p for p in scope(v2).preflight())
    write(v2, '/sys/fs/cgroup/cgroup.controllers', 'cpu io pids\n')
    assert any('no memory controller' in p for p in scope(v2).preflight())


def test_scope_preflight_refuses_swap_without_swap_accounting(v2):
    os.remove(os.path.join(v2, 'sys/fs/cgroup/system.slice/memory.swap.max'))
    assert any('swap accounting' in p for p in scope(v2, swap_on=True).preflight())
    assert scope(v2, swap_on=False).preflight() == []


def test_scope_spawn_asks_systemd_for_the_limits(v2, monkeypatch):
    seen = {}

    class Popen(object):
        def __init__(self, argv, **kwargs):
            seen['argv'] = argv
            self.pid = 4242
    monkeypatch.setattr(subprocess, 'Popen', Popen)
    scope(v2).spawn(['python3', '-c', 'x'])
    argv = seen['argv']
    assert argv[:3] == ['systemd-run', '--scope', '--quiet']
    assert '--collect' in argv and '--unit=%s' % UNIT in argv
    assert argv[argv.index('MemoryMax=%d' % (64 * M)) - 1] == '-p'
    assert 'MemorySwapMax=0' in argv
    assert argv[-4:] == ['--', 'python3', '-c', 'x']


def test_scope_verify_reads_the_kernel_limits_of_the_scope(v2):
    add(v2, 4242, 'python3', SCOPE, argv=['/usr/bin/python3', '-c', 'gate'])
    write(v2, '/sys/fs/cgroup' + SCOPE + '/memory.max', '%d\n' % (64 * M))
    write(v2, '/sys/fs/cgroup' + SCOPE + '/memory.swap.max', '0\n')
    box = scope(v2)
    assert box.verify(4242, wait=0.2) is None
    assert box.cgroup == SCOPE
    assert box.parent_events_before == 1


@pytest.mark.parametrize('memory_max, swap_max, message', [
    ('max\n', '0\n', 'MemoryMax= was not applied'),
    ('%d\n' % (64 * M), 'max\n', 'swap is not limited'),
])
def test_scope_verify_refuses_a_box_that_does_not_hold(v2, memory_max, swap_max, message):
    add(v2, 4242, 'python3', SCOPE, argv=['/usr/bin/python3', '-c', 'gate'])
    write(v2, '/sys/fs/cgroup' + SCOPE + '/memory.max', memory_max)
    write(v2, '/sys/fs/cgroup' + SCOPE + '/memory.swap.max', swap_max)
    assert message in scope(v2).verify(4242, wait=0.2)


def test_scope_verify_refuses_a_process_outside_the_scope(v2):
    add(v2, 4242, 'python3', '/user.slice/session-1.scope', argv=['/usr/bin/python3'])
    assert 'did not arrive in scope' in scope(v2).verify(4242, wait=0.2)


def test_scope_counts_the_kill_in_its_slice_once_systemd_collected_it(v2):
    add(v2, 4242, 'python3', SCOPE, argv=['/usr/bin/python3'])
    write(v2, '/sys/fs/cgroup' + SCOPE + '/memory.max', '%d\n' % (64 * M))
    write(v2, '/sys/fs/cgroup' + SCOPE + '/memory.swap.max', '0\n')
    box = scope(v2)
    box.verify(4242, wait=0.2)
    for name in ('memory.max', 'memory.swap.max'):
        os.remove(os.path.join(v2, 'sys/fs/cgroup' + SCOPE.replace('/', os.sep), name))
    os.rmdir(os.path.join(v2, 'sys/fs/cgroup/system.slice', UNIT))
    write(v2, '/sys/fs/cgroup/system.slice/memory.events', 'oom 2\noom_kill 2\n')
    assert box.counters()['oom_kill'] == 1
    assert box.leftovers() == []


def test_scope_remove_resets_a_failed_scope_and_checks_it_is_gone(v2):
    states = iter(['LoadState=loaded\nActiveState=failed\n', 'LoadState=not-found\n'])
    calls = []

    def run(argv):
        calls.append(argv[:2])
        return 0, next(states) if argv[1] == 'show' else '', ''
    box = scope(v2, run=run)
    assert box.remove() is True
    assert ['systemctl', 'reset-failed'] in calls and ['systemctl', 'stop'] not in calls


def test_scope_remove_stops_a_scope_still_running(v2):
    states = iter(['LoadState=loaded\nActiveState=active\n', 'LoadState=not-found\n'])
    calls = []

    def run(argv):
        calls.append(argv[:2])
        return 0, next(states) if argv[1] == 'show' else '', ''
    assert scope(v2, run=run).remove() is True
    assert calls[1:4] == [['systemctl', 'kill'], ['systemctl', 'stop'], ['systemctl', 'reset-failed']]


def test_raw_v2_preflight_needs_the_memory_controller_delegated(v2):
    box = drill.CgroupV2(os.path.join(v2, 'sys/fs/cgroup'), 'oomguard-drill-x', 64 * M, True, v2)
    assert box.preflight() == []
    write(v2, '/sys/fs/cgroup/cgroup.subtree_control', 'cpu io\n')
    assert 'does not enable the memory controller' in box.preflight()[0]


def test_raw_v2_verify_limits(v2):
    box = drill.CgroupV2(os.path.join(v2, 'sys/fs/cgroup'), 'oomguard-drill-x', 64 * M, True, v2)
    write(v2, '/sys/fs/cgroup/oomguard-drill-x/memory.max', '%d\n' % (64 * M))
    write(v2, '/sys/fs/cgroup/oomguard-drill-x/memory.swap.max', 'max\n')
    assert 'swap is not limited' in box.verify_limits()
    write(v2, '/sys/fs/cgroup/oomguard-drill-x/memory.swap.max', '0\n')
    assert box.verify_limits() is None


def test_v1_preflight_refuses_swap_without_memsw(tmp_path):
    write(tmp_path, '/sys/fs/cgroup/memory/memory.limit_in_bytes', '9223372036854771712\n')
    box = drill.CgroupV1(str(tmp_path / 'sys/fs/cgroup/memory'), 'oomguard-drill-x', 64 * M, True, str(tmp_path))
    assert 'swap accounting' in box.preflight()[0]
    box.swap_on = False
    assert box.preflight() == []


def test_critical_status_on_v2_with_systemd(v2):
    add(v2, 10, 'postgres', '/system.slice/postgresql.service', adj=-900, start=50)
    add(v2, 11, 'postgres', '/system.slice/postgresql.service', adj=-900, start=51)
    add(v2, 20, 'redis-server', '/system.slice/redis.service', adj=0)
    table = process_table(v2)
    groups = {'postgresql.service': '/system.slice/postgresql.service', 'redis.service': '/system.slice/redis.service'}
    status = drill.critical_status([{'unit': 'postgresql.service'}, {'unit': 'redis.service'},
                                    {'process': '^nginx$'}, {'process': '^redis', 'max_oom_score_adj': 0}],
                                   table, v2, show=groups.get)
    assert status[0]['pids'] == [10, 11] and status[0]['protected'] and status[0]['problem'] is None
    assert 'unit redis.service is not protected: oom_score_adj 0 for pid 20 above -1' in status[1]['problem']
    assert 'is not running' in status[2]['problem']
    assert status[3]['protected']
    # The pids come back unchanged: nothing lost. A replaced process (new start time) is lost.
    assert drill.survivors(status[:1], v2) == []
    add(v2, 11, 'postgres', '/system.slice/postgresql.service', adj=-900, start=99)
    assert drill.survivors(status[:1], v2) == ['unit postgresql.service: pid 11 was replaced or is exiting']


def test_critical_units_need_systemd(v2):
    add(v2, 10, 'postgres', '/system.slice/postgresql.service', adj=-900)
    status = drill.critical_status([{'unit': 'postgresql.service'}], process_table(v2), v2, show=None)
    assert 'systemd is not PID 1' in status[0]['problem']


def test_hog_commands():
    python = drill.hog_command('python', 256 * M, 60, 'oomguard-drill-x', '/usr/bin/python3')
    assert python[:4] == ['/usr/bin/python3', '-c', drill.GATE, 'oomguard-drill-x']
    assert python[4:] == ['python', str(256 * M)]
    stress = drill.hog_command('stress-ng', 256 * M, 60, 'oomguard-drill-x', '/usr/bin/python3', '/usr/bin/stress-ng')
    assert stress[4:7] == ['exec', '/usr/bin/stress-ng', '--vm']
    assert '--oomable' in stress and '256M' in stress


def test_verdict():
    assert drill.verdict([drill.check('a', True, ''), drill.check('b', True, '')]) == 'passed'
    assert drill.verdict([drill.check('a', True, ''), drill.check('b', False, '')]) == 'failed'
    assert drill.verdict([]) == 'failed'
