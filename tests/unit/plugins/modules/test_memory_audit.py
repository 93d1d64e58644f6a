"""memory_audit run in-process against a fake host tree; the OOM kills come from oom_facts' parser."""
import os
import shutil

import pytest

from ansible_collections.oomguard.memory.plugins.modules import memory_audit
from faketree import write

LOGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), 'fixtures', 'oom-logs')


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    write(tmp_path, '/proc/meminfo', 'MemTotal: 2048000 kB\nMemAvailable: 512000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n'
                                     'CommitLimit: 1024000 kB\nCommitted_AS: 3000000 kB\n')
    write(tmp_path, '/proc/stat', 'cpu 1 2 3\nbtime 1795627687\n')
    write(tmp_path, '/proc/sys/vm/overcommit_memory', '0\n')
    write(tmp_path, '/proc/sys/vm/panic_on_oom', '0\n')
    write(tmp_path, '/proc/mounts', 'proc /proc proc rw 0 0\n')
    write(tmp_path, '/proc/42/stat', '42 (sshd) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 100 0 100 0\n')
    write(tmp_path, '/proc/42/oom_score_adj', '0\n')
    shutil.copytree(LOGS, os.path.join(str(tmp_path), 'logs'))
    monkeypatch.setattr(memory_audit, 'ROOT', str(tmp_path))
    monkeypatch.setenv('PATH', str(tmp_path))  # no docker, podman, journalctl or dmesg
    return tmp_path


def test_reads_kills_with_the_oom_facts_parser_and_changes_nothing(run_module, fake_root):
    before = sorted(os.walk(str(fake_root)))
    result = run_module(memory_audit, {'sources': ['/logs/107-captured-6.18-cgroup1-memcg.log'],
                                       '_ansible_check_mode': True})
    assert result['changed'] is False and not result.get('failed'), result
    by_id = dict((f['id'], f) for f in result['findings'])
    assert by_id['oom_kills']['evidence']['kills'] == 1 and by_id['oom_kills']['evidence']['by_memcg'] == {'/feas_oom': 1}
    assert by_id['swap_missing']['severity'] == 'medium'
    assert by_id['critical_unprotected']['evidence']['pids'] == [42]
    assert sorted(os.walk(str(fake_root))) == before


def test_oom_summary_skips_the_logs(run_module, fake_root):
    result = run_module(memory_audit, {'oom_summary': {'kills': 0, 'events': 0}, 'sources': ['/missing.log'],
                                       'checks': ['oom_kills', 'overcommit']})
    assert not result.get('failed') and result['findings'] == []
    assert [c['id'] for c in result['checks']] == ['oom_kills', 'overcommit']


@pytest.mark.parametrize('args,fragment', [
    ({'sources': ['/missing.log']}, 'cannot read'),
    ({'since': 'yesterday-ish', 'sources': ['/logs/107-captured-6.18-cgroup1-memcg.log']}, 'since:'),
    ({'checks': ['swapp']}, 'value of checks must be one or more of'),
    ({'thresholds': {'swap_full_percent': 'lots'}}, 'swap_full_percent'),
    ({'thresholds': {'swap_full_percent': 101}}, 'thresholds.swap_full_percent must be a percentage'),
    ({'oom_summary': {'kills': 'x'}}, 'oom_summary must be the summary'),
    ({'top_units': -3}, 'top_units must be 0 or more'),
    ({'sources': []}, 'sources is empty'),
])
def test_bad_input_is_one_sentence(run_module, fake_root, args, fragment):
    result = run_module(memory_audit, args)
    assert result.get('failed') and fragment in result['msg'], result
    assert 'Traceback' not in result['msg']


def test_facts_true_returns_exactly_what_oom_facts_returns_in_one_run(run_module, fake_root, monkeypatch):
    from ansible_collections.oomguard.memory.plugins.modules import oom_facts
    monkeypatch.setattr(oom_facts, 'ROOT', str(fake_root))
    log = '/logs/107-captured-6.18-cgroup1-memcg.log'
    audited = run_module(memory_audit, {'facts': True, 'sources': [log], 'top': 3, 'max_events': 5})
    plain = run_module(oom_facts, {'sources': [log], 'top': 3, 'max_events': 5})
    assert not audited.get('failed'), audited
    assert audited['ansible_facts'] == plain['ansible_facts']
    kills = [f for f in audited['findings'] if f['id'] == 'oom_kills']
    assert kills and kills[0]['evidence']['kills'] == plain['ansible_facts']['oom']['summary']['kills'] == 1
    both = run_module(memory_audit, {'facts': True, 'oom_summary': {'kills': 0}})
    assert both.get('failed') and 'mutually exclusive' in both['msg']
