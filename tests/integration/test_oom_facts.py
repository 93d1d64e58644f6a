"""oom_facts against the real kernel: trigger a real OOM kill in a memory cgroup (v1 or v2, whichever
this host has; memory+swap limited so an active swapfile cannot hide the kill), then find exactly
that kill through Ansible, from /dev/kmsg and from dmesg."""
import datetime

import pytest

from kernel import memcg_oom_kill, memcg_root


@pytest.fixture(scope='module')
def oom_kill():
    """Kill a python3 process for real in a 64M memory cgroup; yield what happened."""
    root = memcg_root()
    if root is None:
        pytest.skip('no memory cgroup to create here (neither a cgroup v1 memory hierarchy nor a cgroup2 mount '
                    'with the memory controller)')
    with memcg_oom_kill(root, 'oomguard-it') as kill:
        yield kill


def the_event(facts, pid):
    found = [e for e in facts['events'] if e['victim'] and e['victim']['pid'] == pid]
    assert len(found) == 1, 'expected exactly one event for pid %d, found %r' % (pid, found)
    return found[0]


@pytest.mark.parametrize('source', ['kmsg', 'dmesg'])
def test_finds_the_real_kill(ansible, oom_kill, source):
    result = ansible.module('oomguard.memory.oom_facts', sources=[source], since='boot', details=['tasks'])
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is False
    facts = result['ansible_facts']['oom']
    event = the_event(facts, oom_kill['pid'])
    assert event['kind'] == 'memcg'
    assert event['constraint'] == 'CONSTRAINT_MEMCG'
    assert event['oom_memcg'] == oom_kill['cgroup']
    assert event['task_memcg'] == oom_kill['cgroup']
    assert event['victim']['name'].startswith('python')
    assert event['victim']['anon_rss_kb'] > 30 * 1024
    assert event['trigger'] and event['trigger']['pid'] == oom_kill['pid']
    assert event['uptime'] > 0 and event['time'] >= oom_kill['started'].strftime('%Y-%m-%dT%H:%M:%S')
    assert any(row['pid'] == oom_kill['pid'] for row in event['tasks'])
    assert event['source'].startswith(source + ':')
    assert facts['summary']['kills'] >= 1 and facts['summary']['by_memcg'].get(oom_kill['cgroup']) == 1
    assert facts['counters']['vmstat_oom_kill'] >= oom_kill['before'] + 1


def test_memory_state_matches_the_kernel(ansible):
    facts = ansible.module('oomguard.memory.oom_facts', sources=['kmsg'], top=3)['ansible_facts']['oom']
    with open('/proc/meminfo') as handle:
        total = int(next(line for line in handle if line.startswith('MemTotal:')).split()[1])
    with open('/proc/sys/vm/swappiness') as handle:
        swappiness = int(handle.read())
    assert facts['memory']['mem_total_kb'] == total
    assert facts['memory']['swappiness'] == swappiness
    assert set(facts['pressure']) == {'some', 'full'}
    top = facts['top_processes']
    assert len(top) == 3 and top[0]['rss_kb'] >= top[1]['rss_kb'] >= top[2]['rss_kb'] > 0
    # Each row is a real process as the kernel describes it; rows of processes that ended since
    # the run cannot be checked, but the three largest processes of a host rarely all end at once.
    checked = 0
    for row in top:
        assert isinstance(row['pid'], int) and row['pid'] > 0, row
        seen = kernel_view(row['pid'])
        if seen is None:
            continue
        assert (row['name'], row['oom_score_adj']) == (seen['name'], seen['oom_score_adj']), (row, seen)
        checked += 1
    assert checked, 'none of the top processes %r is still running' % top


def kernel_view(pid):
    """Name and oom_score_adj of ``pid`` read from /proc, or None when it has ended."""
    try:
        with open('/proc/%d/comm' % pid) as handle:
            name = handle.read().rstrip('\n')
        with open('/proc/%d/oom_score_adj' % pid) as handle:
            return {'name': name, 'oom_score_adj': int(handle.read())}
    except (IOError, OSError):
        return None


def test_a_window_after_the_kill_excludes_it(ansible, oom_kill):
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)).strftime('%Y-%m-%dT%H:%M:%SZ')
    facts = ansible.module('oomguard.memory.oom_facts', sources=['kmsg'], since=later, top=0)['ansible_facts']['oom']
    assert [e for e in facts['events'] if e['victim'] and e['victim']['pid'] == oom_kill['pid']] == []
    since_start = ansible.module('oomguard.memory.oom_facts', sources=['kmsg'],
                                 since=oom_kill['started'].strftime('%Y-%m-%dT%H:%M:%SZ'), top=0)
    the_event(since_start['ansible_facts']['oom'], oom_kill['pid'])
    age = ansible.module('oomguard.memory.oom_facts', sources=['kmsg'], since='10m', top=0)
    the_event(age['ansible_facts']['oom'], oom_kill['pid'])


def test_check_mode_is_the_same_read(ansible, oom_kill):
    result = ansible.module('oomguard.memory.oom_facts', check=True, sources=['kmsg'], since='boot', top=0)
    assert result['changed'] is False
    the_event(result['ansible_facts']['oom'], oom_kill['pid'])


@pytest.mark.parametrize('args, words', [
    ({'since': 'yesterday-ish'}, 'since'),
    ({'max_events': -1}, 'max_events'),
    ({'sources': ['/nonexistent/oomguard/kern.log']}, '/nonexistent/oomguard/kern.log'),
    ({'details': ['everything']}, 'details'),
])
def test_bad_input_is_one_clear_sentence(ansible, args, words):
    result = ansible.module('oomguard.memory.oom_facts', **args)
    assert result.get('failed') is True
    assert words in result['msg']
    assert 'Traceback' not in result['msg'] and 'module_stderr' not in result


def test_ci_gate_fails_the_play_after_a_kill(ansible, oom_kill, tmp_path):
    """The documented CI gate: fail when anything was killed since a given time."""
    since = oom_kill['started'].strftime('%Y-%m-%dT%H:%M:%SZ')
    gate = ansible.playbook('playbooks/oom_report.yml', extra_vars={
        'oom_report_since': since, 'oom_report_fail_on': 'kills', 'oom_report_dir': str(tmp_path / 'gate')})
    assert gate.rc != 0 and gate.failed == 1, gate.output[-2000:]
    assert 'OOM kill(s) (python' in gate.output
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)).strftime('%Y-%m-%dT%H:%M:%SZ')
    quiet = ansible.playbook('playbooks/oom_report.yml', extra_vars={
        'oom_report_since': later, 'oom_report_fail_on': 'kills', 'oom_report_dir': str(tmp_path / 'quiet')})
    assert quiet.rc == 0 and quiet.failed == 0 and quiet.changed == 0, quiet.output[-2000:]


def test_report_playbook_prints_a_summary_and_changes_nothing(ansible, oom_kill, tmp_path):
    # what `make run` passes: a kill in the past must not fail an interactive look
    report = ansible.playbook('playbooks/oom_report.yml', inventory='playbooks/inventory.ini', extra_vars={
        'oom_report_fail_on': 'never', 'oom_report_dir': str(tmp_path)})
    assert report.rc == 0 and report.changed == 0, report.output[-2000:]
    assert 'OOM killer:' in report.output and 'largest processes:' in report.output
    assert 'in cgroup %s' % oom_kill['cgroup'] in report.output
