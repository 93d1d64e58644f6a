"""The memory audit: each evaluator with plain data, and the whole audit against fake host trees."""
import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import audit
from faketree import write

T = dict(audit.DEFAULT_THRESHOLDS)
GIB_KB = 1024 * 1024


def ids(found):
    return [f['id'] for f in found]


def test_every_finding_has_the_documented_shape():
    found = audit.evaluate_swap({'SwapTotal': 0, 'SwapFree': 0, 'Committed_AS': 950, 'CommitLimit': 1000}, T)
    (item,) = found
    assert set(item) == {'id', 'check', 'severity', 'subject', 'message', 'evidence', 'fix'}
    assert item['fix'] == {'role': 'oomguard.memory.swap', 'variable': 'swap_size', 'text': 'add a swap file sized from RAM'}
    assert item['evidence']['commit_percent'] == 95.0


def test_oom_kills_names_victims_and_window():
    summary = {'events': 3, 'kills': 2, 'first': 'a', 'last': 'b', 'by_victim': {'java': 1, 'python3': 1},
               'by_memcg': {'/app': 2}}
    (item,) = audit.evaluate_oom_kills(summary, since='24h')
    assert item['severity'] == 'high' and 'since 24h' in item['message'] and 'java (1x)' in item['message']
    assert item['evidence']['by_memcg'] == {'/app': 2}
    assert audit.evaluate_oom_kills({'events': 1, 'kills': 0}) == []


@pytest.mark.parametrize('meminfo,expected', [
    ({'SwapTotal': 0, 'SwapFree': 0, 'Committed_AS': 899, 'CommitLimit': 1000}, []),
    ({'SwapTotal': 0, 'SwapFree': 0, 'Committed_AS': 900, 'CommitLimit': 1000}, ['swap_missing']),
    ({'SwapTotal': 1000, 'SwapFree': 101, 'Committed_AS': 5000, 'CommitLimit': 1000}, []),
    ({'SwapTotal': 1000, 'SwapFree': 100, 'Committed_AS': 5, 'CommitLimit': 1000}, ['swap_full']),
    ({'SwapTotal': 0, 'SwapFree': 0}, []),
])
def test_swap_thresholds(meminfo, expected):
    assert ids(audit.evaluate_swap(meminfo, T)) == expected


def test_critical_processes_only_unprotected_ones_and_comm_truncated():
    procs = [{'pid': 10, 'name': 'sshd', 'oom_score_adj': 0}, {'pid': 11, 'name': 'sshd', 'oom_score_adj': -900},
             {'pid': 12, 'name': 'postgres', 'oom_score_adj': -900},
             {'pid': 13, 'name': 'averyveryverylo', 'oom_score_adj': 300}]
    found = audit.evaluate_critical_processes(procs, ['sshd', 'postgres', 'averyveryverylongname', 'etcd'])
    assert [(f['subject'], f['evidence']['pids']) for f in found] == [('sshd', [10]), ('averyveryverylongname', [13])]
    assert found[0]['fix']['variable'] == 'oom_protect_critical'


def unit(name, usage, mx=None, high=None, version='v2'):
    return {'unit': name, 'path': '/system.slice/' + name, 'usage': usage, 'max': mx, 'high': high, 'version': version}


def test_unit_limits_largest_unlimited_services_and_high_above_max():
    units = [unit('big.service', 4 << 30), unit('capped.service', 3 << 30, mx=4 << 30),
             unit('small.service', 10 << 20), unit('tiny.service', 1 << 20),
             unit('odd.service', 1 << 20, mx=1 << 30, high=2 << 30), unit('system.slice', 8 << 30)]
    found = audit.evaluate_unit_limits(units, 16 * GIB_KB, 3, T)
    assert [(f['id'], f['subject'], f['severity']) for f in found] == [
        ('unit_unlimited', 'big.service', 'medium'), ('unit_unlimited', 'small.service', 'low'),
        ('memory_high_not_below_max', 'odd.service', 'low')]
    # on v1 a soft limit is no MemoryHigh=: still unlimited
    v1 = [unit('a.service', 1 << 30, high=1 << 20, version='v1')]
    assert ids(audit.evaluate_unit_limits(v1, 16 * GIB_KB, 5, T)) == ['unit_unlimited']


def test_containers_without_limit_grouped_per_runtime():
    (item,) = audit.evaluate_container_limits('podman', [{'name': 'a', 'memory': 0}, {'name': 'b', 'memory': 1 << 30}])
    assert item['evidence'] == {'runtime': 'podman', 'containers': ['a'], 'running': 2}
    assert audit.evaluate_container_limits('docker', [{'name': 'b', 'memory': 1}]) == []
    assert audit.parse_inspect('/web 0\nname with space 536870912\ngarbage\n') == [
        {'name': 'web', 'memory': 0}, {'name': 'name with space', 'memory': 536870912}]


def test_sysctl_override_of_our_file_is_medium_and_drift_is_low():
    files = [('/etc/sysctl.d/90-oomguard-swappiness.conf', 'vm.swappiness = 10\n'),
             ('/etc/sysctl.d/99-tuning.conf', 'vm.swappiness=60\nvm.panic_on_oom = 0\n'),
             ('/etc/sysctl.conf', '# only comments\n')]
    found = audit.evaluate_sysctl_overrides(files, {'vm.swappiness': 60, 'vm.panic_on_oom': 1},
                                            ['vm.swappiness', 'vm.panic_on_oom'])
    assert [(f['id'], f['subject'], f['severity']) for f in found] == [
        ('sysctl_overridden', 'vm.swappiness', 'medium'), ('sysctl_not_persistent', 'vm.panic_on_oom', 'low')]
    assert found[0]['evidence']['winner'] == {'path': '/etc/sysctl.d/99-tuning.conf', 'line': 1, 'value': '60'}
    # the same value twice is no override; someone else's files overriding each other is low
    same = [('/etc/sysctl.d/a.conf', 'vm.swappiness=10'), ('/etc/sysctl.d/b.conf', 'vm.swappiness = 10')]
    assert audit.evaluate_sysctl_overrides(same, {'vm.swappiness': 10}, ['vm.swappiness']) == []
    other = [('/etc/sysctl.d/a.conf', 'vm.swappiness=1'), ('/etc/sysctl.d/b.conf', 'vm.swappiness=5')]
    assert [f['severity'] for f in audit.evaluate_sysctl_overrides(other, {'vm.swappiness': 5}, ['vm.swappiness'])] == ['low']


def test_memory_pressure_levels():
    def psi(full):
        return {'some': {'avg60': full}, 'full': {'avg10': 0.0, 'avg60': full, 'avg300': 0.0, 'total': 1}}
    assert audit.evaluate_memory_pressure(psi(9.99), T) == []
    assert [f['severity'] for f in audit.evaluate_memory_pressure(psi(10.0), T)] == ['medium']
    assert [f['severity'] for f in audit.evaluate_memory_pressure(psi(20.0), T)] == ['high']
    assert audit.evaluate_memory_pressure({'some': {'avg60': 50.0}}, T) == []  # kernels before full


@pytest.mark.parametrize('mode,panic,role,expected', [
    (0, 0, 'generic', []),
    (1, 0, 'generic', [('overcommit_always', 'low')]),
    (2, 0, 'generic', [('overcommit_strict', 'low')]),
    (0, 1, 'generic', [('panic_on_oom', 'medium')]),
    (0, 2, 'generic', [('panic_on_oom', 'high')]),
    (1, 0, 'kubernetes', []),
    (0, 1, 'kubernetes', [('panic_on_oom', 'high'), ('overcommit_role_conflict', 'medium')]),
    (2, 0, 'kubernetes', [('overcommit_role_conflict', 'medium')]),
])
def test_overcommit_and_panic_with_host_role(mode, panic, role, expected):
    found = audit.evaluate_overcommit({'vm.overcommit_memory': mode, 'vm.panic_on_oom': panic}, {}, role)
    assert [(f['id'], f['severity']) for f in found] == expected


# ---- the whole audit on a fake host -------------------------------------------------------------

MEMINFO = ('MemTotal:       16384000 kB\nMemAvailable:    1000000 kB\nSwapTotal:             0 kB\n'
           'SwapFree:              0 kB\nCommitLimit:     8192000 kB\nCommitted_AS:    8000000 kB\n')


@pytest.fixture
def host(tmp_path):
    """A systemd host on cgroup v2 without swap: sshd unprotected, a 4 GiB unlimited service,
    our swappiness file overridden, PSI full avg60 12, panic_on_oom 1, a kubelet."""
    write(tmp_path, '/proc/meminfo', MEMINFO)
    write(tmp_path, '/proc/pressure/memory', 'some avg10=30.00 avg60=20.00 avg300=5.00 total=9\n'
                                             'full avg10=15.00 avg60=12.00 avg300=3.00 total=7\n')
    for name, value in (('swappiness', 60), ('overcommit_memory', 0), ('panic_on_oom', 1), ('overcommit_ratio', 50),
                        ('oom_kill_allocating_task', 0), ('min_free_kbytes', 67584)):
        write(tmp_path, '/proc/sys/vm/' + name, '%d\n' % value)
    write(tmp_path, '/proc/mounts', 'cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n')
    write(tmp_path, '/sys/fs/cgroup/cgroup.controllers', 'cpu memory pids\n')
    for name, current, mx, high in (('app.service', 4 << 30, 'max', 'max'), ('db.service', 2 << 30, '%d' % (3 << 30), 'max'),
                                    ('cron.service', 1 << 20, 'max', 'max')):
        base = '/sys/fs/cgroup/system.slice/' + name
        write(tmp_path, base + '/memory.current', '%d\n' % current)
        write(tmp_path, base + '/memory.max', mx + '\n')
        write(tmp_path, base + '/memory.high', high + '\n')
    write(tmp_path, '/sys/fs/cgroup/system.slice/memory.current', '%d\n' % (6 << 30))
    write(tmp_path, '/sys/fs/cgroup/system.slice/memory.max', 'max\n')
    for pid, comm, adj in ((1, 'systemd', 0), (500, 'sshd', 0), (600, 'postgres', -900)):
        write(tmp_path, '/proc/%d/stat' % pid, '%d (%s) S 1 %d %d 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 100 0 100 0\n'
              % (pid, comm, pid, pid))
        write(tmp_path, '/proc/%d/oom_score_adj' % pid, '%d\n' % adj)
    write(tmp_path, '/etc/sysctl.d/90-oomguard-swappiness.conf', 'vm.swappiness = 10\n')
    write(tmp_path, '/etc/sysctl.d/99-zz-local.conf', 'vm.swappiness = 60\n')
    write(tmp_path, '/var/lib/kubelet/config.yaml', 'kind: KubeletConfiguration\n')
    return tmp_path


def params(**over):
    base = {'checks': None, 'oom_summary': None, 'since': None, 'critical_processes': ['sshd', 'postgres'],
            'top_units': 5, 'sysctls': list(audit.MANAGED_SYSCTLS), 'host_role': 'auto', 'thresholds': {}}
    base.update(over)
    return base


class Commands(object):
    """A fake run_command: podman with two running containers, one without a limit; docker's
    client without a daemon."""

    def __init__(self):
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv)
        if argv[0].endswith('docker'):
            return 1, '', 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.'
        if argv[1] == 'ps':
            return 0, 'aaa\nbbb\n', ''
        return 0, 'web 0\ndb 1073741824\n', ''


def run_audit(root, commands=None, **over):
    warnings = []
    collected = []

    def collect(since):
        collected.append(since)
        return {'events': 1, 'kills': 1, 'by_victim': {'java': 1}, 'by_memcg': {}, 'first': None, 'last': None}
    result = audit.Audit(params(**over), commands or Commands(), lambda name: '/usr/bin/' + name, warnings.append,
                         collect, root=str(root)).run()
    return result, warnings, collected


def test_the_whole_audit_on_a_fake_systemd_host(host):
    result, warnings, collected = run_audit(host, since='7d')
    assert collected == ['7d'] and warnings == []
    got = sorted((f['id'], f['subject'], f['severity']) for f in result['findings'])
    assert got == sorted([
        ('oom_kills', 'kernel', 'high'),
        ('swap_missing', 'swap', 'medium'),
        ('critical_unprotected', 'sshd', 'medium'),
        ('unit_unlimited', 'app.service', 'medium'),
        ('unit_unlimited', 'cron.service', 'low'),
        ('container_unlimited', 'podman', 'medium'),
        ('sysctl_overridden', 'vm.swappiness', 'medium'),
        ('memory_pressure', 'memory', 'medium'),
        ('panic_on_oom', 'vm.panic_on_oom', 'high'),
        ('overcommit_role_conflict', 'vm.overcommit_memory', 'medium'),
    ])
    assert [c['id'] for c in result['checks']] == list(audit.CHECKS)
    assert all(c['status'] == 'findings' for c in result['checks'])
    assert result['summary'] == {'high': 2, 'medium': 7, 'low': 1, 'findings': 10, 'worst': 'high'}
    assert result['findings'][0]['severity'] == 'high' and result['findings'][-1]['severity'] == 'low'


def test_oom_summary_given_means_no_second_log_read(host):
    result, _w, collected = run_audit(host, checks=['oom_kills'], oom_summary={'kills': 0, 'events': 0})
    assert collected == [] and result['findings'] == [] and result['checks'][0]['status'] == 'ok'


def test_checks_that_cannot_run_are_skipped_with_the_reason(tmp_path):
    write(tmp_path, '/proc/meminfo', MEMINFO.replace('SwapTotal:             0', 'SwapTotal:       100000')
          .replace('SwapFree:              0', 'SwapFree:        100000'))
    write(tmp_path, '/proc/mounts', 'proc /proc proc rw 0 0\n')
    result, _w, _c = run_audit(tmp_path, host_role='generic', oom_summary={'kills': 0})
    status = dict((c['id'], (c['status'], c['reason'])) for c in result['checks'])
    assert status['memory_pressure'][0] == 'skipped' and 'pressure stall' in status['memory_pressure'][1]
    assert status['unit_limits'] == ('skipped', 'no cgroup hierarchy with the memory controller is mounted')
    assert status['swap'] == ('ok', None) and status['overcommit'] == ('ok', None)
    assert status['critical_processes'] == ('ok', None)  # no sshd running: nothing to protect


def test_container_check_skips_without_any_runtime_and_without_a_daemon(host):
    result = audit.Audit(params(checks=['container_limits']), Commands(), lambda name: None, None, None,
                         root=str(host)).run()
    assert result['checks'][0]['status'] == 'skipped' and 'neither docker nor podman' in result['checks'][0]['reason']
    only_docker = audit.Audit(params(checks=['container_limits']), Commands(),
                              lambda name: '/usr/bin/docker' if name == 'docker' else None, None, None,
                              root=str(host)).run()
    assert only_docker['checks'][0]['status'] == 'skipped'
    assert 'Cannot connect to the Docker daemon' in only_docker['checks'][0]['reason']


def test_host_role_detection_and_override(host):
    assert audit.Audit(params(), None, None, None, None, root=str(host)).host_role() == 'kubernetes'
    assert audit.Audit(params(host_role='generic'), None, None, None, None, root=str(host)).host_role() == 'generic'


def test_v1_service_limits_and_unreadable_usage(tmp_path):
    write(tmp_path, '/proc/mounts', 'cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n')
    base = '/sys/fs/cgroup/memory/system.slice/'
    write(tmp_path, base + 'a.service/memory.usage_in_bytes', '%d\n' % (1 << 30))
    write(tmp_path, base + 'a.service/memory.limit_in_bytes', '9223372036854771712\n')
    write(tmp_path, base + 'b.service/memory.usage_in_bytes', '%d\n' % (2 << 30))
    write(tmp_path, base + 'b.service/memory.limit_in_bytes', '%d\n' % (3 << 30))
    units = audit.unit_cgroups({'memory_root': str(tmp_path) + '/sys/fs/cgroup/memory', 'memory_version': 'v1'})
    by_name = dict((u['unit'], u) for u in units)
    assert by_name['a.service']['max'] is None and by_name['b.service']['max'] == 3 << 30
    assert by_name['system.slice']['usage'] is None


@pytest.mark.parametrize('over,fragment', [
    ({'thresholds': {'commit_percent': 150.0}}, 'thresholds.commit_percent must be a percentage'),
    ({'top_units': -1}, 'top_units must be 0 or more'),
    ({'oom_summary': {'events': 1}}, 'oom_summary must be the summary of oomguard.memory.oom_facts'),
    ({'oom_summary': {'kills': True}}, 'oom_summary must be'),
    ({'critical_processes': ['../x']}, "critical_processes: '../x' is not a process name"),
    ({'sysctls': ['../../etc/shadow']}, "sysctls: '../../etc/shadow' is not a sysctl name"),
])
def test_bad_options_are_one_sentence(over, fragment):
    with pytest.raises(audit.AuditError) as caught:
        audit.validate(params(**over))
    assert fragment in str(caught.value)
