"""oom_drill planned and refused on a fake cgroup v2 host with systemd as PID 1 (this machine has
neither): the backend it picks, what check mode says it would do, each refusal naming what is
missing, and bad input as one sentence. Real drills: tests/integration/test_oom_drill.py."""
import pytest

from ansible_collections.oomguard.memory.plugins.modules import oom_drill
from faketree import process, write

MEMINFO = 'MemTotal: 4000000 kB\nMemFree: 3000000 kB\nMemAvailable: 3500000 kB\nCached: 100000 kB\n' \
          'SwapTotal: 1048572 kB\nSwapFree: 1048572 kB\n'


def add(root, pid, comm, cgroup, adj=0, ppid=1):
    process(root, pid, comm, '0::%s' % cgroup, ppid=ppid, adj=adj, exe='/usr/sbin')


@pytest.fixture
def host(tmp_path, monkeypatch):
    root = str(tmp_path)
    write(root, '/proc/mounts', 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec 0 0\n')
    write(root, '/proc/meminfo', MEMINFO)
    write(root, '/proc/swaps', 'Filename Type Size Used Priority\n/swapfile file 1048572 0 -2\n')
    write(root, '/proc/vmstat', 'oom_kill 3\n')
    write(root, '/proc/pressure/memory', 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n')
    write(root, '/run/systemd/system/.keep', '')
    write(root, '/sys/fs/cgroup/cgroup.controllers', 'cpu io memory pids\n')
    write(root, '/sys/fs/cgroup/system.slice/memory.swap.max', 'max\n')
    add(root, 1, 'systemd', '/init.scope')
    add(root, 10, 'postgres', '/system.slice/postgresql.service', adj=-900)
    add(root, 20, 'redis-server', '/system.slice/redis.service', adj=0)
    add(root, 30, 'sshd', '/system.slice/ssh.service', adj=-900)
    add(root, 31, 'sshd', '/system.slice/ssh.service', adj=0, ppid=30)     # a connection: not checked
    monkeypatch.setattr(oom_drill, 'ROOT', root)
    groups = {'postgresql.service': '/system.slice/postgresql.service', 'redis.service': '/system.slice/redis.service'}

    def run_command(self, argv):
        assert argv[:2] == ['systemctl', 'show'], argv
        return 0, 'ControlGroup=%s\n' % groups.get(argv[2], ''), ''
    monkeypatch.setattr(oom_drill.Drill, 'run_command', run_command)
    return root


def drill(run_module, **args):
    args.setdefault('hog', 'python')
    args.setdefault('_ansible_check_mode', True)
    return run_module(oom_drill, args)


def test_check_mode_plans_a_systemd_scope_on_cgroup_v2(run_module, host):
    result = drill(run_module, critical=[{'unit': 'postgresql'}])
    assert result['status'] == 'planned' and result['changed'] is True
    assert result['backend'] == 'systemd_scope'
    assert 'MemoryMax=64.0 MiB and MemorySwapMax=0' in result['actions'][0]
    assert result['critical'][0]['pids'] == [10] and result['critical'][0]['protected'] is True
    ssh = [c for c in result['critical'] if 'sshd' in c['label']]
    assert ssh[0]['pids'] == [30]       # the listener, protected at -900; not the connection 31


def test_refuses_an_unprotected_critical_unit_and_names_it(run_module, host):
    result = drill(run_module, critical=[{'unit': 'postgresql.service'}, {'unit': 'redis.service'}])
    assert result['status'] == 'refused' and result['changed'] is False
    assert 'unit redis.service is not protected: oom_score_adj 0 for pid 20 above -1' in result['msg']
    assert [c['name'] for c in result['checks']] == ['preflight']


def test_refuses_the_unprotected_ssh_daemon(run_module, host):
    add(host, 30, 'sshd', '/system.slice/ssh.service', adj=0)
    result = drill(run_module)
    assert result['status'] == 'refused' and 'sshd' in result['msg'] and 'not protected' in result['msg']
    assert drill(run_module, ssh=False)['status'] == 'planned'


def test_refuses_when_swap_cannot_be_limited(run_module, host):
    import os
    os.remove(os.path.join(host, 'sys/fs/cgroup/system.slice/memory.swap.max'))
    result = drill(run_module, _ansible_check_mode=False)
    assert result['status'] == 'refused'
    assert 'the hog cannot be confined' in result['msg'] and 'swap accounting' in result['msg']


def test_refuses_without_systemd_when_a_scope_is_asked_for(run_module, host):
    import os
    os.remove(os.path.join(host, 'run/systemd/system/.keep'))
    os.rmdir(os.path.join(host, 'run/systemd/system'))
    assert drill(run_module)['backend'] == 'cgroup_v2'
    result = drill(run_module, backend='systemd_scope', _ansible_check_mode=False)
    assert result['status'] == 'refused' and 'systemd is not PID 1' in result['msg']


def test_refuses_a_limit_that_would_press_the_host(run_module, host):
    result = drill(run_module, limit='1G')
    assert result['status'] == 'refused' and 'more than a quarter of MemAvailable' in result['msg']


@pytest.mark.parametrize('args, message', [
    ({'limit': '1M'}, 'limit 1M is below 16M'),
    ({'limit': 'lots'}, 'limit: cannot read'),
    ({'hog_size': '32M'}, 'is not more than limit'),
    ({'timeout': 0}, 'timeout must be at least 1 second'),
    ({'critical': [{'unit': 'a', 'process': 'b'}]}, 'exactly one of unit or process'),
])
def test_bad_input_is_one_sentence(run_module, host, args, message):
    result = drill(run_module, **args)
    assert result.get('failed') and message in result['msg'], result['msg']
