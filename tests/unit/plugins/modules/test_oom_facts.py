"""oom_facts run in-process against a fake /proc and /sys tree and the public log fixtures."""
import gzip
import json
import os
import shutil
import signal

import pytest

from ansible_collections.oomguard.memory.plugins.modules import oom_facts
from faketree import write

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), 'fixtures')
LOGS = os.path.join(FIXTURES, 'oom-logs')
IN_ROOT = '/logs'


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    """A host with 2 GiB RAM, no swap, PSI, a v1 memory cgroup with one OOM kill, two processes
    and a kernel thread."""
    write(tmp_path, '/proc/meminfo', 'MemTotal:        2048000 kB\nMemFree:          100000 kB\nMemAvailable:     512000 kB\n'
                                     'SwapTotal:             0 kB\nSwapFree:              0 kB\nCommitLimit:     1024000 kB\n'
                                     'Committed_AS:    3000000 kB\n')
    write(tmp_path, '/proc/stat', 'cpu 1 2 3\nbtime 1795627687\n')
    write(tmp_path, '/proc/vmstat', 'nr_free_pages 25000\noom_kill 7\n')
    write(tmp_path, '/proc/pressure/memory', 'some avg10=2.00 avg60=1.00 avg300=0.50 total=900\n'
                                             'full avg10=1.00 avg60=0.50 avg300=0.25 total=400\n')
    write(tmp_path, '/proc/sys/vm/swappiness', '60\n')
    write(tmp_path, '/proc/sys/vm/overcommit_memory', '0\n')
    write(tmp_path, '/proc/mounts', 'cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n')
    write(tmp_path, '/sys/fs/cgroup/memory/memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n')
    write(tmp_path, '/sys/fs/cgroup/memory/batch/memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n')
    procs = [(100, 'postgres', 1, 0x400100, 500000, 0, -900, '/system.slice/postgresql.service'),
             (200, 'GC Thread#9', 1, 0x400100, 900000, 1024, 0, '/batch'),
             (300, 'tiny', 1, 0x400100, 100, 0, 0, '/'),
             (2, 'kthreadd', 0, 0x208040, 0, 0, 0, '/')]
    for pid, name, ppid, flags, rss, swap, adj, cgroup in procs:
        write(tmp_path, '/proc/%d/stat' % pid, '%d (%s) S %d %d %d 0 -1 %d 0 0 0 0 0 0 0 0 20 0 1 0 100 0 %d 0\n'
              % (pid, name, ppid, pid, pid, flags, rss // 4))
        write(tmp_path, '/proc/%d/status' % pid, 'Name:\t%s\nVmRSS:\t%d kB\nVmSwap:\t%d kB\n' % (name, rss, swap))
        write(tmp_path, '/proc/%d/oom_score' % pid, '%d\n' % max(0, rss // 2048 + adj))
        write(tmp_path, '/proc/%d/oom_score_adj' % pid, '%d\n' % adj)
        write(tmp_path, '/proc/%d/cgroup' % pid, '5:memory:%s\n0::/\n' % cgroup)
    # Log paths are read under the same root, as the module would read /var/log on a real host.
    shutil.copytree(LOGS, os.path.join(str(tmp_path), 'logs'))
    monkeypatch.setattr(oom_facts, 'ROOT', str(tmp_path))
    return tmp_path


def run(run_module, **args):
    return run_module(oom_facts, args)


def test_everything_from_one_fixture_log(run_module, fake_root):
    log = os.path.join(IN_ROOT, '107-captured-6.18-cgroup1-memcg.log')
    result = run(run_module, sources=[log], details=['tasks', 'memcg_stats'], top=2)
    assert result['changed'] is False and not result.get('failed')
    facts = result['ansible_facts']['oom']
    (event,) = facts['events']
    assert event['victim']['pid'] == 4694 and event['oom_memcg'] == '/feas_oom' and event['kind'] == 'memcg'
    assert event['source'].startswith(log + ':')
    assert isinstance(event['tasks'], list) and event['tasks']
    assert 'meminfo' not in event
    assert facts['summary'] == {'events': 1, 'kills': 1, 'first': event['time'], 'last': event['time'],
                                'by_victim': {'python3': 1}, 'by_memcg': {'/feas_oom': 1}}
    assert facts['counters'] == {'vmstat_oom_kill': 7, 'memcg': [{'path': '/batch', 'oom': None, 'oom_kill': 1}]}
    assert facts['memory'] == {'mem_total_kb': 2048000, 'mem_available_kb': 512000, 'swap_total_kb': 0,
                               'swap_free_kb': 0, 'committed_as_kb': 3000000, 'commit_limit_kb': 1024000,
                               'overcommit_memory': 0, 'swappiness': 60}
    assert facts['pressure']['some'] == {'avg10': 2.0, 'avg60': 1.0, 'avg300': 0.5, 'total': 900}
    assert facts['top_processes'] == [
        {'pid': 200, 'name': 'GC Thread#9', 'rss_kb': 900000, 'swap_kb': 1024, 'oom_score': 439, 'oom_score_adj': 0,
         'memcg': '/batch'},
        {'pid': 100, 'name': 'postgres', 'rss_kb': 500000, 'swap_kb': 0, 'oom_score': 0, 'oom_score_adj': -900,
         'memcg': '/system.slice/postgresql.service'}]


def test_every_public_fixture_through_the_module(run_module, fake_root):
    for name in sorted(os.listdir(LOGS)):
        if not name.endswith('.log'):
            continue
        with open(os.path.join(LOGS, name[:-4] + '.json')) as handle:
            expected = json.load(handle)['events']
        facts = run(run_module, sources=[os.path.join(IN_ROOT, name)], top=0)['ansible_facts']['oom']
        assert facts['summary']['events'] == len(expected), name
        # the module orders events by time (an excerpt may join two machines' logs): compare as multisets
        assert sorted((e['victim']['pid'] if e['victim'] else -1) for e in facts['events']) == \
            sorted((-1 if e['victim_pid'] is None else e['victim_pid']) for e in expected), name


def test_max_events_keeps_the_newest_and_summary_counts_all(run_module, fake_root):
    log = os.path.join(IN_ROOT, '103-cadvisor-test-4.8-gentoo-docker-two-memcg.log')
    full = run(run_module, sources=[log], top=0)['ansible_facts']['oom']
    assert len(full['events']) >= 2
    one = run(run_module, sources=[log], top=0, max_events=1)['ansible_facts']['oom']
    assert one['events'] == full['events'][-1:]
    assert one['summary'] == full['summary']
    none = run(run_module, sources=[log], top=0, max_events=0)['ansible_facts']['oom']
    assert none['events'] == [] and none['summary'] == full['summary']


def test_missing_psi_and_vmstat_are_warnings(run_module, fake_root):
    os.unlink(os.path.join(str(fake_root), 'proc/pressure/memory'))
    os.unlink(os.path.join(str(fake_root), 'proc/vmstat'))
    log = os.path.join(IN_ROOT, '106-lkml-2.4-out-of-memory-killed-list.log')
    result = run(run_module, sources=[log], top=0)
    facts = result['ansible_facts']['oom']
    assert facts['pressure'] is None and facts['counters']['vmstat_oom_kill'] is None
    assert any('pressure' in w for w in result['warnings']) and any('vmstat' in w for w in result['warnings'])


@pytest.mark.parametrize('args, words', [
    ({'max_events': -1}, 'max_events must be 0 or more'),
    ({'top': -5}, 'top must be 0 or more'),
    ({'sources': []}, 'sources is empty'),
    ({'since': 'last tuesday'}, 'since'),
    ({'sources': ['/nonexistent/kern.log']}, '/nonexistent/kern.log'),
])
def test_bad_input_fails_with_one_sentence(run_module, fake_root, args, words):
    result = run(run_module, **args)
    assert result['failed'] is True and words in result['msg']
    assert '\n' not in result['msg'].strip()


def test_check_mode_reads_the_same(run_module, fake_root):
    log = os.path.join(IN_ROOT, '101-cadvisor-test-3.13-memcg-memorymonster.log')
    normal = run(run_module, sources=[log], top=0)
    checked = run_module(oom_facts, {'sources': [log], 'top': 0, '_ansible_check_mode': True})
    assert checked['changed'] is False and checked['ansible_facts'] == normal['ansible_facts']


def test_without_boot_time_uptimes_stay_uptimes(run_module, fake_root):
    os.unlink(os.path.join(str(fake_root), 'proc/stat'))
    log = os.path.join(IN_ROOT, '107-captured-6.18-cgroup1-memcg.log')
    result = run(run_module, sources=[log], top=0)
    (event,) = result['ansible_facts']['oom']['events']
    assert event['time'] is None and event['uptime'] == 252.971105
    assert any('stat' in w for w in result['warnings'])
    failed = run(run_module, sources=[log], top=0, since='boot')
    assert failed['failed'] and 'boot' in failed['msg']


# --- hostile input: one sentence naming the option, never a hang or a traceback ----------------

class Hang(Exception):
    pass


@pytest.fixture
def deadline():
    """Fail a test that blocks (FIFO open, endless read) instead of waiting for it forever."""
    def ring(_signum, _frame):
        raise Hang('the module did not return within 20 s')
    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _special(fake_root, kind):
    path = os.path.join(str(fake_root), 'var', 'log', 'special')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if kind == 'fifo':
        os.mkfifo(path)
    elif kind == 'directory':
        os.mkdir(path)
    else:
        os.symlink(kind, path)     # /dev/zero, /dev/kmsg: character devices of the real host
    return '/var/log/special'


@pytest.mark.parametrize('kind', ['fifo', '/dev/zero', '/dev/null', 'directory'])
def test_sources_naming_no_regular_file_fail_without_hanging(run_module, fake_root, deadline, kind):
    source = _special(fake_root, kind)
    result = run(run_module, sources=[source], top=0)
    assert result['failed'] is True and 'not a regular file' in result['msg'] and source in result['msg']


def test_the_path_dev_kmsg_is_refused_with_the_keyword_as_hint(run_module, fake_root, deadline):
    os.makedirs(os.path.join(str(fake_root), 'dev'), exist_ok=True)
    os.symlink('/dev/null', os.path.join(str(fake_root), 'dev', 'kmsg'))
    result = run(run_module, sources=['/dev/kmsg'], top=0)
    assert result['failed'] is True and 'keyword kmsg' in result['msg']


def test_special_files_among_other_sources_are_skipped_and_reported(run_module, fake_root, deadline):
    source = _special(fake_root, 'fifo')
    log = os.path.join(IN_ROOT, '107-captured-6.18-cgroup1-memcg.log')
    result = run(run_module, sources=[source, log], top=0)
    facts = result['ansible_facts']['oom']
    assert facts['summary']['kills'] == 1
    assert [(s['source'], s['status'], s['reason']) for s in facts['sources_read']] == [
        (os.path.join(str(fake_root), 'var/log/special'), 'skipped', 'not a regular file'), (log, 'read', None)]
    assert any('not a regular file' in w for w in result['warnings'])


def _gz(path, data):
    with open(path, 'wb') as handle:
        handle.write(data)


def test_corrupt_gz_alone_fails_with_a_sentence_without_raw_bytes(run_module, fake_root):
    _gz(os.path.join(str(fake_root), 'logs', 'bad.log.gz'), b'\x1f\x8b\x08\x00garbage\xff\xfe that is no deflate')
    result = run(run_module, sources=['/logs/bad.log.gz'], top=0)
    assert result['failed'] is True and 'not a valid gzip file' in result['msg']
    assert "b'" not in result['msg'] and '\\x' not in result['msg']
    _gz(os.path.join(str(fake_root), 'logs', 'notgz.log.gz'), b'plain text, not gzip\n')
    result = run(run_module, sources=['/logs/notgz.log.gz'], top=0)
    assert result['failed'] is True and 'not a valid gzip file' in result['msg'] and "b'" not in result['msg']


def test_corrupt_gz_as_one_glob_match_warns_and_goes_on(run_module, fake_root):
    good = gzip.compress(open(os.path.join(LOGS, '107-captured-6.18-cgroup1-memcg.log'), 'rb').read())
    _gz(os.path.join(str(fake_root), 'logs', 'kern.log.2.gz'), good[:len(good) // 2])      # cut short
    _gz(os.path.join(str(fake_root), 'logs', 'kern.log.3.gz'), good)
    result = run(run_module, sources=['/logs/kern.log.*.gz'], top=0)
    facts = result['ansible_facts']['oom']
    assert not result.get('failed') and facts['summary']['kills'] == 1
    assert [s['reason'] for s in facts['sources_read']] == ['corrupt', None]
    assert len(result['warnings']) == 1 and 'kern.log.2.gz' in result['warnings'][0]


@pytest.mark.parametrize('args, words', [
    ({'since': '99999999999999999999d'}, 'since'),
    ({'since': '1e400s'}, 'since'),
    ({'since': '0001-01-01T00:00:00+01:00'}, 'since'),
    ({'since': '9999-12-31T23:59:59-14:00'}, 'since'),
    ({'since': '2024-02-30'}, 'since'),
    ({'since': '2024-01-01T25:00:00Z'}, 'since'),
    ({'since': '2024-01-01T00:00:00+99:00'}, 'since'),
    ({'sources': ['']}, 'sources item 1 is empty'),
    ({'sources': ['kmsg', '   ']}, 'sources item 2 is empty'),
    ({'sources': ['/var/log/kern\x00.log']}, 'NUL byte'),
    ({'sources': ['/var/log/[']}, 'no file matches'),
    ({'max_events': -2}, 'max_events'),
    ({'top': -1}, 'top'),
    ({'details': ['tasks', 'everything']}, 'details'),
    ({'max_events': 'many'}, 'max_events'),
    ({'top': '1e9x'}, 'top'),
])
def test_hostile_value_of_every_option_is_one_sentence(run_module, fake_root, deadline, args, words):
    result = run(run_module, **args)
    assert result['failed'] is True and words in result['msg'], result
    assert '\n' not in result['msg'].strip() and 'Traceback' not in result['msg']


def test_huge_counts_are_taken_as_all(run_module, fake_root):
    log = os.path.join(IN_ROOT, '103-cadvisor-test-4.8-gentoo-docker-two-memcg.log')
    result = run(run_module, sources=[log], max_events=10 ** 18, top=10 ** 18)
    assert len(result['ansible_facts']['oom']['events']) == 2
