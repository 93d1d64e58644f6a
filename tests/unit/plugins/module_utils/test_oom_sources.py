# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the OOM source reader: files, gz, kmsg, journal, auto, dedup, since."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime
import gzip
import io
import json
import os
import subprocess

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import oom_sources
from ansible_collections.oomguard.memory.plugins.module_utils.oom_sources import (
    OomSourceError, collect_events, parse_since, parse_file, summarize)
from faketree import write

UTC = datetime.timezone.utc
BOOT = 1700000000  # 2023-11-14T22:13:20Z
KILL = ('Memory cgroup out of memory: Killed process {pid} (python3) total-vm:221384kB, anon-rss:65280kB, '
        'file-rss:6664kB, shmem-rss:0kB, UID:0 pgtables:188kB oom_score_adj:0')
HEAD = 'python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0'


pytestmark = pytest.mark.usefixtures('utc')


@pytest.fixture
def root(tmp_path):
    (tmp_path / 'proc').mkdir()
    (tmp_path / 'proc' / 'stat').write_text(u'cpu  1 2 3\nbtime %d\n' % BOOT)
    (tmp_path / 'var' / 'log').mkdir(parents=True)
    (tmp_path / 'dev').mkdir()
    return tmp_path


class Calls(object):
    def __init__(self, results=None):
        self.argv = []
        self.results = results or {}
        self.warnings = []

    def run(self, argv):
        self.argv.append(argv)
        return self.results.get(argv[0], (1, '', 'not here'))

    def warn(self, msg):
        self.warnings.append(msg)


def syslog(day, hms, pid, host='h'):
    return 'Nov %2d %s %s kernel: [%d.000000] %s\n' % (day, hms, host, pid, KILL.format(pid=pid))


def test_plain_and_gz_files_and_glob(root):
    mtime = BOOT + 86400 * 30
    write(root, '/var/log/kern.log', syslog(20, '10:00:00', 101), mtime)
    with gzip.open(str(root / 'var/log/kern.log.2.gz'), 'wt') as f:
        f.write('noise\n' + syslog(18, '09:00:00', 100))
    os.utime(str(root / 'var/log/kern.log.2.gz'), (mtime, mtime))
    calls = Calls()
    events = collect_events(['/var/log/kern.log*'], calls.run, calls.warn, root=str(root))
    assert [e['victim']['pid'] for e in events] == [100, 101]
    assert [e['time'] for e in events] == ['2023-11-18T09:00:00Z', '2023-11-20T10:00:00Z']
    assert events[0]['source'] == str(root / 'var/log/kern.log.2.gz') + ':2'
    assert calls.warnings == []


def test_missing_single_source_raises_but_warns_among_many(root):
    calls = Calls()
    with pytest.raises(OomSourceError, match='cannot read'):
        collect_events(['/var/log/nope.log'], calls.run, calls.warn, root=str(root))
    write(root, '/var/log/kern.log', syslog(20, '10:00:00', 5), BOOT + 86400 * 30)
    events = collect_events(['/var/log/nope.log', '/var/log/kern.log'], calls.run, calls.warn, root=str(root))
    assert len(events) == 1 and len(calls.warnings) == 1 and 'nope.log' in calls.warnings[0]


def test_kmsg_copy_and_boot_time(root):
    write(root, '/dev/kmsg', '4,1,252971105,-;%s\n SUBSYSTEM=x\n3,2,252992511,-;%s\n' % (HEAD, KILL.format(pid=4694)))
    calls = Calls()
    events = collect_events(['kmsg'], calls.run, calls.warn, root=str(root))
    assert len(events) == 1
    assert events[0]['time'] == '2023-11-14T22:17:32.971105Z' and events[0]['source'] == 'kmsg:1'
    assert events[0]['trigger']['name'] == 'python3' and events[0]['victim']['pid'] == 4694


def test_since_filter_and_unknown_times(root):
    write(root, '/dev/kmsg', '3,2,10000000,-;%s\n3,3,90000000,-;%s\n' % (KILL.format(pid=1), KILL.format(pid=2)))
    calls = Calls()
    since = datetime.datetime.fromtimestamp(BOOT + 50, UTC)
    events = collect_events(['kmsg'], calls.run, calls.warn, root=str(root), since=since)
    assert [e['victim']['pid'] for e in events] == [2]
    (root / 'proc' / 'stat').write_text(u'cpu 1\n')
    assert collect_events(['kmsg'], calls.run, calls.warn, root=str(root), since=since) == []


def test_dedup_across_sources_merges_fields(root):
    # the same kill in kmsg (uptime, no host) and in kern.log (host, syslog time one second off)
    write(root, '/dev/kmsg', '3,2,252992511,-;%s\n' % KILL.format(pid=4694))
    write(root, '/var/log/kern.log', 'Nov 14 22:17:33 web kernel: %s\n' % KILL.format(pid=4694), BOOT + 3600)
    write(root, '/var/log/syslog', 'Nov 14 22:17:33 web kernel: %s\n' % KILL.format(pid=4694), BOOT + 3600)
    calls = Calls()
    events = collect_events(['kmsg', '/var/log/kern.log', '/var/log/syslog'], calls.run, calls.warn, root=str(root))
    assert len(events) == 1
    assert events[0]['host'] == 'web' and events[0]['uptime'] == 252.992511


def test_same_pid_far_apart_is_not_deduplicated(root):
    write(root, '/var/log/kern.log', syslog(1, '10:00:00', 7), BOOT + 86400 * 30)
    write(root, '/var/log/syslog', syslog(2, '10:00:00', 7), BOOT + 86400 * 30)
    calls = Calls()
    assert len(collect_events(['/var/log/kern.log', '/var/log/syslog'], calls.run, calls.warn, root=str(root))) == 2


def test_auto_uses_kmsg_without_journal_plus_rotated_logs(root, monkeypatch):
    monkeypatch.setattr(oom_sources, '_which', lambda name: None)
    write(root, '/dev/kmsg', '3,2,1000000,-;%s\n' % KILL.format(pid=1))
    mtime = BOOT + 86400 * 30
    write(root, '/var/log/messages', syslog(20, '10:00:00', 2), mtime)
    write(root, '/var/log/messages.1', syslog(19, '10:00:00', 3), mtime)
    write(root, '/var/log/messages-20231201', syslog(18, '10:00:00', 4), mtime)
    write(root, '/var/log/messages.bak', syslog(17, '10:00:00', 5), mtime)
    calls = Calls()
    events = collect_events(['auto'], calls.run, calls.warn, root=str(root))
    assert sorted(e['victim']['pid'] for e in events) == [1, 2, 3, 4]
    assert calls.argv == []


class FakeProc(object):
    def __init__(self, lines, rc=0):
        self.stdout = io.BytesIO(b''.join(l.encode('utf-8') + b'\n' for l in lines))
        self.rc = rc

    def wait(self):
        return self.rc


def test_auto_prefers_journal_when_it_has_kernel_messages(root, monkeypatch):
    monkeypatch.setattr(oom_sources, '_which', lambda name: '/usr/bin/' + name)
    write(root, '/dev/kmsg', '3,2,1000000,-;%s\n' % KILL.format(pid=99))
    seen = []

    def popen(argv):
        seen.append(argv)
        rec = {'MESSAGE': KILL.format(pid=8), '_TRANSPORT': 'kernel', '__REALTIME_TIMESTAMP': '1700000100000000',
               '_HOSTNAME': 'j'}
        return FakeProc([json.dumps(rec)])

    calls = Calls({'journalctl': (0, '-- line --\n', '')})
    events = collect_events(['auto'], calls.run, calls.warn, root=str(root), popen=popen)
    assert [e['victim']['pid'] for e in events] == [8]
    assert events[0]['source'] == 'journal:1' and events[0]['host'] == 'j'
    assert seen[0][:3] == ['journalctl', '--no-pager', '-q'] and '_TRANSPORT=kernel' in seen[0]


def test_dmesg_source_through_run_command(root, monkeypatch):
    monkeypatch.setattr(oom_sources, '_which', lambda name: '/bin/' + name)
    calls = Calls({'dmesg': (0, '[   48.183028] %s\n[   48.200877] %s\n' % (HEAD, KILL.format(pid=446)), '')})
    events = collect_events(['dmesg'], calls.run, calls.warn, root=str(root))
    assert calls.argv == [['dmesg']]
    assert events[0]['time'] == '2023-11-14T22:14:08.183028Z' and events[0]['victim']['pid'] == 446
    calls = Calls({'dmesg': (1, '', 'dmesg: read kernel buffer failed: Operation not permitted')})
    with pytest.raises(OomSourceError, match='not permitted'):
        collect_events(['dmesg'], calls.run, calls.warn, root=str(root))


def test_parallel_segments_equal_single_process(tmp_path):
    block = []
    for i in range(300):
        block.append('Nov 14 22:%02d:%02d h kernel: noise line %d with nothing in it\n' % (i // 60 % 60, i % 60, i))
        if i % 7 == 0:
            block.append('Nov 14 22:00:00 h kernel: %s\n' % HEAD)
            block.append('Nov 14 22:00:00 h kernel: Tasks state (memory values in pages):\n')
        if i % 7 == 3:
            block.append('Nov 14 22:00:00 h kernel: %s\n' % KILL.format(pid=1000 + i))
    path = write(tmp_path, '/big.log', ''.join(block) * 20)
    size = os.path.getsize(path)
    single = list(parse_file(path, size, {}, workers=1))
    monkey_min = oom_sources.PARALLEL_MIN_BYTES
    try:
        oom_sources.PARALLEL_MIN_BYTES = 0
        for workers in (2, 3, 4):
            assert list(parse_file(path, size, {}, workers=workers)) == single
    finally:
        oom_sources.PARALLEL_MIN_BYTES = monkey_min
    # 43 headers per block, each followed by its kill line three noise lines later
    assert len(single) == 20 * 43
    assert all(e['trigger'] and e['victim'] for e in single)
    assert [e['line'] for e in single[:2]] == [2, 12]


@pytest.mark.parametrize('text, expected', [
    ('boot', BOOT),
    ('30m', BOOT + 10000 - 1800),
    ('24h', BOOT + 10000 - 86400),
    ('7d', BOOT + 10000 - 7 * 86400),
    ('2023-11-14', 1699920000),
    ('2023-11-14T22:13:20Z', BOOT),
    ('2023-11-15T00:13:20+02:00', BOOT),
    ('2023-11-14 22:13:20', BOOT),
])
def test_parse_since(text, expected):
    got = parse_since(text, now=BOOT + 10000, boot_time=BOOT)
    assert got.tzinfo is not None and got.timestamp() == expected


@pytest.mark.parametrize('text', ['yesterday', '10x', '2023-13-01', '-5m'])
def test_parse_since_rejects(text):
    with pytest.raises(ValueError, match='since'):
        parse_since(text, now=BOOT, boot_time=BOOT)


def test_parse_since_boot_without_btime():
    with pytest.raises(ValueError, match='boot'):
        parse_since('boot', now=BOOT, boot_time=None)
    assert parse_since(None) is None


def test_summarize():
    events = [{'time': '2024-01-01T00:00:00Z', 'victim': {'name': 'a'}, 'oom_memcg': '/x'},
              {'time': None, 'victim': None, 'oom_memcg': None},
              {'time': '2024-01-02T00:00:00Z', 'victim': {'name': 'a'}, 'oom_memcg': None}]
    assert summarize(events) == {'events': 3, 'kills': 2, 'first': '2024-01-01T00:00:00Z',
                                 'last': '2024-01-02T00:00:00Z', 'by_victim': {'a': 2}, 'by_memcg': {'/x': 1}}


def test_parallel_split_never_separates_a_selection_line_from_its_kill(tmp_path):
    """The segment boundary falls inside a rate-limited 'Kill process ... score' line: the kill
    line after it must still open the event at the selection line, as in one process."""
    head = 'Nov 14 22:00:00 h kernel: noise line\n' * 40
    selection = 'Nov 14 22:00:01 h kernel: Out of memory: Kill process 77 (db) score 9 or sacrifice child\n'
    kill = 'Nov 14 22:00:01 h kernel: Killed process 77 (db) total-vm:100kB, anon-rss:10kB, file-rss:0kB\n'
    # pad the tail so the middle of the file is the middle of the selection line
    tail_len = 2 * (len(head) + len(selection) // 2) - len(head) - len(selection) - len(kill)
    text = head + selection + kill + 'x' * (tail_len - 1) + '\n'
    assert len(head) < len(text) // 2 < len(head) + len(selection)
    path = write(tmp_path, '/split.log', text)
    size = os.path.getsize(path)
    single = list(parse_file(path, size, {}, workers=1))
    assert [(e['line'], e['kind'], e['victim']['pid']) for e in single] == [(41, 'global', 77)]
    monkey_min = oom_sources.PARALLEL_MIN_BYTES
    try:
        oom_sources.PARALLEL_MIN_BYTES = 0
        assert list(parse_file(path, size, {}, workers=2)) == single
    finally:
        oom_sources.PARALLEL_MIN_BYTES = monkey_min


# --- sources_read, compressed rotations, the journal across boots ---------------------------------

def test_sources_read_says_what_was_read_and_why_the_rest_was_not(root):
    write(root, '/var/log/kern.log', syslog(20, '10:00:00', 5), BOOT + 86400 * 30)
    write(root, '/var/log/empty.log', '')
    secret = write(root, '/var/log/secret.log', syslog(20, '10:00:00', 6))
    os.chmod(secret, 0)
    calls = Calls()
    events, read = oom_sources.collect(['/var/log/kern.log', '/var/log/nope.log', '/var/log/empty.log',
                                        '/var/log/secret.log'], calls.run, calls.warn, root=str(root))
    readable_as_root = os.access(secret, os.R_OK)
    assert [(r['source'], r['status'], r['reason'], r['events']) for r in read][:3] == [
        ('/var/log/kern.log', 'read', None, 1),
        (str(root / 'var/log/nope.log'), 'skipped', 'missing', 0),
        (str(root / 'var/log/empty.log'), 'skipped', 'empty', 0)]
    if not readable_as_root:
        assert (read[3]['status'], read[3]['reason']) == ('skipped', 'permission')
    assert len(events) == (2 if readable_as_root else 1)


def test_auto_reports_missing_syslog_files_and_the_journal(root, monkeypatch):
    monkeypatch.setattr(oom_sources, '_which', lambda name: None)
    write(root, '/dev/kmsg', '')
    calls = Calls()
    _events, read = oom_sources.collect(['auto'], calls.run, calls.warn, root=str(root))
    got = dict((r['source'], (r['status'], r['reason'])) for r in read)
    assert got['journal'] == ('skipped', 'missing') and got['kmsg'] == ('read', None)
    assert got[str(root / 'var/log/kern.log')] == ('skipped', 'missing')


@pytest.mark.parametrize('suffix, opener', [
    ('.xz', lambda path: __import__('lzma').open(path, 'wb')),
    ('.bz2', lambda path: __import__('bz2').open(path, 'wb')),
])
def test_rotated_xz_and_bz2(root, suffix, opener):
    path = str(root / ('var/log/kern.log.3' + suffix))
    with opener(path) as f:
        f.write(('noise\n' + syslog(18, '09:00:00', 100)).encode())
    os.utime(path, (BOOT + 86400 * 30, BOOT + 86400 * 30))
    calls = Calls()
    events = collect_events(['/var/log/kern.log*'], calls.run, calls.warn, root=str(root))
    assert [(e['victim']['pid'], e['source']) for e in events] == [(100, path + ':2')]


def test_rotated_zstd_through_the_zstd_command(root):
    if oom_sources._which('zstd') is None:
        pytest.skip('no zstd command on this host')
    plain = write(root, '/var/log/kern.log.4', 'noise\n' + syslog(18, '09:00:00', 101))
    subprocess.check_call(['zstd', '-q', '--rm', plain])
    calls = Calls()
    events = collect_events(['/var/log/kern.log.4.zst'], calls.run, calls.warn, root=str(root))
    assert [e['victim']['pid'] for e in events] == [101]


def test_zstd_without_the_command_is_skipped_with_the_reason(root, monkeypatch):
    write(root, '/var/log/kern.log.5.zst', '(\xb5/\xfd not really')
    monkeypatch.setattr(oom_sources, '_which', lambda name: None)
    calls = Calls()
    _events, read = oom_sources.collect(['/var/log/kern.log.5.zst', '/var/log/kern.log.6'], calls.run, calls.warn,
                                        root=str(root))
    assert read[0]['reason'] == 'no decompressor' and 'zstd' in calls.warnings[0]


def test_journal_reads_every_boot_with_since_on_the_journal_side(root, monkeypatch):
    monkeypatch.setattr(oom_sources, '_which', lambda name: '/usr/bin/' + name)
    seen = []

    def popen(argv):
        seen.append(argv)
        recs = []
        for boot, pid, stamp in (('b1', 7, 1700000100), ('b2', 8, 1700090000)):
            recs.append(json.dumps({'MESSAGE': KILL.format(pid=pid), '_TRANSPORT': 'kernel', '_BOOT_ID': boot,
                                    '__REALTIME_TIMESTAMP': '%d000000' % stamp}))
        return FakeProc(recs)

    calls = Calls()
    since = datetime.datetime.fromtimestamp(1700000000, UTC)
    events = collect_events(['journal'], calls.run, calls.warn, root=str(root), popen=popen, since=since)
    assert [(e['victim']['pid'], e['boot']) for e in events] == [(7, 'b1'), (8, 'b2')]
    argv = seen[0]
    assert '-b' not in argv and '-k' not in argv and '_TRANSPORT=kernel' in argv
    assert argv[argv.index('--since') + 1] == '@1699999940'


def test_the_same_kill_quoted_twice_in_one_file_is_one_event(root):
    line = 'Nov 14 22:17:33 web kernel: %s\n' % KILL.format(pid=4694)
    relay = 'Nov 14 22:17:33 web containerd[9]: msg="Nov 14 22:17:33 web kernel: %s"\n' % KILL.format(pid=4694)
    write(root, '/var/log/syslog', line + relay, BOOT + 3600)
    calls = Calls()
    events = collect_events(['/var/log/syslog'], calls.run, calls.warn, root=str(root))
    assert len(events) == 1


def test_one_trigger_invoking_the_oom_killer_twice_in_a_second_is_two_events(root):
    def report(victim):
        return ('Nov 14 22:17:33 web kernel: hald invoked oom-killer: gfp_mask=0x1201d2, order=0, oomkilladj=0\n'
                'Nov 14 22:17:33 web kernel: Pid: 3000, comm: hald Not tainted 2.6.26-2-amd64 #1\n'
                'Nov 14 22:17:33 web kernel: %s\n' % KILL.format(pid=victim))
    write(root, '/var/log/syslog', report(3956) + report(3568), BOOT + 3600)
    calls = Calls()
    events = collect_events(['/var/log/syslog'], calls.run, calls.warn, root=str(root))
    assert [(e['trigger']['pid'], e['victim']['pid']) for e in events] == [(3000, 3956), (3000, 3568)]


def test_journal_runs_once_per_boot_in_short_unix_and_falls_back_to_json(root, monkeypatch):
    monkeypatch.setattr(oom_sources, '_which', lambda name: '/usr/bin/' + name)
    boots = ' -1 %s Tue 2023-11-14 20:00:00 UTC—Tue 2023-11-14 21:00:00 UTC\n  0 %s Tue 2023-11-14 22:00:00 UTC—\n' % (
        'a' * 32, 'b' * 32)
    seen = []

    def popen(argv):
        seen.append(argv)
        boot = argv[argv.index('-b') + 1]
        pid = 1 if boot == 'a' * 32 else 2
        return FakeProc(['%d.250000 web kernel: %s' % (1700000000 + pid, KILL.format(pid=pid))])

    calls = Calls({'journalctl': (0, boots, '')})
    events = collect_events(['journal'], calls.run, calls.warn, root=str(root), popen=popen)
    assert [(e['victim']['pid'], e['boot'], e['host'], e['time']) for e in events] == [
        (1, 'a' * 32, 'web', '2023-11-14T22:13:21.250000Z'), (2, 'b' * 32, 'web', '2023-11-14T22:13:22.250000Z')]
    assert calls.argv == [['journalctl', '--no-pager', '-q', '--list-boots']]
    assert [a[:6] for a in seen] == [['journalctl', '--no-pager', '-q', '-a', '-o', 'short-unix']] * 2

    def old_journalctl(argv):
        seen.append(argv)
        if 'short-unix' in argv:
            return FakeProc([], rc=1)
        return FakeProc([json.dumps({'MESSAGE': KILL.format(pid=3), '_TRANSPORT': 'kernel', '_BOOT_ID': 'c' * 32,
                                     '__REALTIME_TIMESTAMP': '1700000100000000'})])

    del seen[:]
    events = collect_events(['journal'], Calls().run, calls.warn, root=str(root), popen=old_journalctl)
    assert [(e['victim']['pid'], e['boot']) for e in events] == [(3, 'c' * 32)]
    assert 'json' in seen[-1]
