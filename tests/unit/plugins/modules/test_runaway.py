"""runaway in-process on a fake /proc: check mode reports the choice and the exact steps, a unit
process on a systemd host is planned through systemctl, nothing qualifying is not a change."""
import pytest

from ansible_collections.oomguard.memory.plugins.modules import runaway as module
from faketree import process, write


def add(root, pid, comm, rss_mb, cgroup='/user.slice/session-1.scope', adj=0, kernel=False):
    process(root, pid, comm, '1:name=systemd:%s' % cgroup, adj=adj, kernel=kernel, rss_kb=rss_mb * 1024)


@pytest.fixture
def host(tmp_path, monkeypatch):
    root = str(tmp_path)
    write(root, '/proc/uptime', '100000.0 1.0\n')
    add(root, 1, 'init', 900, cgroup='/init.scope')
    add(root, 100, 'java', 3072, cgroup='/system.slice/batch-import.service')
    add(root, 200, 'node', 2048)
    monkeypatch.setattr(module, 'ROOT', root)
    return root


def test_check_mode_signal_plan(run_module, host):
    result = run_module(module, {'process': '^node$', '_ansible_check_mode': True})
    assert result['changed'] is True
    assert result['actions'] == ['SIGTERM pid 200 (node, 2048.0 MiB RSS)', 'SIGKILL pid 200 if still running after 10 s']
    assert result['stopped']['method'] == 'signal' and result['stopped']['exited'] is None
    assert result['verdicts'][0].startswith('pid 200 node (2048.0 MiB RSS')


def test_check_mode_plans_a_restart_of_the_unit_on_a_systemd_host(run_module, host):
    write(host, '/run/systemd/system/.keep', '')
    result = run_module(module, {'_ansible_check_mode': True})
    assert result['stopped']['pid'] == 100 and result['stopped']['method'] == 'systemctl'
    assert result['actions'] == ['systemctl restart batch-import.service (holds pid 100, java, 3072.0 MiB RSS)']
    kill = run_module(module, {'_ansible_check_mode': True, 'unit_action': 'kill', 'grace': 3})
    assert kill['actions'][0] == 'systemctl kill --kill-whom=all --signal=SIGTERM batch-import.service (holds pid 100)'


def test_without_systemd_a_unit_process_is_signalled(run_module, host):
    result = run_module(module, {'_ansible_check_mode': True})
    assert result['stopped']['method'] == 'signal'


def test_nothing_qualifies_is_no_change(run_module, host):
    result = run_module(module, {'min_rss': '10G'})
    assert result['changed'] is False and result['stopped'] is None
    assert result['msg'].startswith('no process qualifies: pid 100 (java): smaller than min_rss')


@pytest.mark.parametrize('args, message', [
    ({'pid': 5, 'process': 'x'}, 'pid names one process'),
    ({'min_rss': 'big'}, 'min_rss: cannot read'),
    ({'grace': -1}, 'grace must be 0 or more'),
    ({'protect': [{'process': '(['}]}, 'not a valid regular expression'),
])
def test_bad_input(run_module, host, args, message):
    result = run_module(module, args)
    assert result.get('failed') and message in result['msg']
