# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the OOM report parser: the public excerpts, then every format and kernel era."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import glob
import io
import json
import os

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import oom_log, oom_scan
from ansible_collections.oomguard.memory.plugins.module_utils.oom_log import format_event
from ansible_collections.oomguard.memory.plugins.module_utils.oom_scan import NEEDLES, SCAN_NEEDLES, anchors, newlines


def parse_lines(lines, label, **kw):
    """Event facts, as the module shows them, of oom_log.parse_lines."""
    return (format_event(e, label) for e in oom_log.parse_lines(lines, **kw))


def parse_stream(stream, label, **kw):
    return (format_event(e, label) for e in oom_log.parse_stream(stream, **kw))


FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'oom-logs')
ALL = ('tasks', 'meminfo', 'memcg_stats')

# fixture key -> path into the event dict (shared with bench/oom_fixture_score.py)
with open(os.path.join(FIXTURES, '..', 'oom-fields.json')) as _f:
    FIELDS = json.load(_f)


def lines(text):
    return text.strip('\n').split('\n')


def parse(text, **kw):
    """Parse through both entry points and insist they agree."""
    events = list(parse_lines(lines(text), 'test', **kw))
    streamed = list(parse_stream(io.BytesIO((text.strip('\n') + '\n').encode('utf-8')), 'test', **kw))
    assert streamed == events
    return events


def who(events):
    """(trigger name, victim pid) of each event, None where the event has none."""
    return [(e['trigger'] and e['trigger']['name'], e['victim'] and e['victim']['pid']) for e in events]


def one(text, **kw):
    events = parse(text, **kw)
    assert len(events) == 1, events
    return events[0]


def dig(event, path):
    for key in path:
        if event is None:
            return None
        event = event[key]
    return event


@pytest.mark.parametrize('json_path', sorted(glob.glob(os.path.join(FIXTURES, '*.json'))),
                         ids=lambda p: os.path.basename(p)[:-5])
def test_public_excerpts(json_path):
    expected = json.load(open(json_path))['events']
    log = json_path[:-5] + '.log'
    with open(log, 'rb') as f:
        events = list(parse_stream(f, log, details=ALL))
    with io.open(log, encoding='utf-8', errors='replace') as f:
        assert list(parse_lines(f, log, details=ALL)) == events
    assert len(events) == len(expected)
    for want, got in zip(expected, events):
        for key, value in want.items():
            if key == 'task_table_rows':
                assert len(got['tasks']) == value
            elif key == 'victim_pids':
                assert [v['pid'] for v in got['victims']] == value
            elif key == 'meminfo':
                assert dict((k, got['meminfo'].get(k)) for k in value) == value
            else:
                assert dig(got, FIELDS[key]) == value, key


def test_fixture_line_numbers_and_reaper():
    log = os.path.join(FIXTURES, '103-cadvisor-test-4.8-gentoo-docker-two-memcg.log')
    events = list(parse_stream(open(log, 'rb'), 'k'))
    numbers = [int(e['source'].split(':')[1]) for e in events]
    text = open(log).read().split('\n')
    assert [text[n - 1].split(' ')[0] for n in numbers] == ['gunpowder-memho', 'gunpowder-memho']
    assert 'invoked oom-killer' in text[numbers[1] - 1]
    assert all(e['reaped'] for e in events)


# --- prefixes -------------------------------------------------------------------------------

KILL_5X = ('Out of memory: Killed process 2501 (java) total-vm:4096kB, anon-rss:2048kB, file-rss:8kB, '
           'shmem-rss:0kB, UID:1000 pgtables:64kB oom_score_adj:300')


def test_dmesg_uptime_with_boot_time():
    ev = one('[ 1234.567890] ' + KILL_5X, boot_time=1700000000)
    assert ev['uptime'] == 1234.56789
    assert ev['time'] == '2023-11-14T22:33:54.567890Z'
    assert ev['victim'] == {'pid': 2501, 'name': 'java', 'uid': 1000, 'total_vm_kb': 4096, 'anon_rss_kb': 2048,
                            'file_rss_kb': 8, 'shmem_rss_kb': 0, 'pgtables_kb': 64, 'oom_score_adj': 300,
                            'reaped': False}
    assert ev['kind'] == 'global' and ev['trigger'] is None


def test_dmesg_uptime_without_boot_time_has_no_time():
    ev = one('[    5.000001] ' + KILL_5X)
    assert ev['time'] is None and ev['uptime'] == 5.000001


def test_dmesg_t_is_local_time(utc):
    ev = one('[Tue Sep 10 12:00:00 2024] ' + KILL_5X)
    assert ev['time'] == '2024-09-10T12:00:00Z'


def test_syslog_with_uptime_and_host(utc):
    ev = one('Sep 10 12:00:00 db-1 kernel: [ 99.500000] ' + KILL_5X, year=2024)
    assert ev['host'] == 'db-1' and ev['uptime'] == 99.5 and ev['time'] == '2024-09-10T12:00:00Z'


def test_syslog_relay_prefix_and_priority():
    ev = one('Sep 10 12:00:00 relay kernel: : <3>' + KILL_5X, year=2024)
    assert ev['victim']['pid'] == 2501 and ev['host'] == 'relay'


def test_journal_short_without_host_and_precise(utc):
    ev = one('Dec 14 17:13:12.123456 kernel: ' + KILL_5X, year=2024)
    assert ev['host'] is None and ev['time'] == '2024-12-14T17:13:12.123456Z'


@pytest.mark.parametrize('stamp, expected', [
    ('2024-09-10T12:00:00+0200', '2024-09-10T10:00:00Z'),
    ('2024-09-10T12:00:00.250000+02:00', '2024-09-10T10:00:00.250000Z'),
    ('2024-09-10T12:00:00Z', '2024-09-10T12:00:00Z'),
])
def test_iso_prefixes(stamp, expected):
    ev = one('%s node3 kernel: %s' % (stamp, KILL_5X))
    assert ev['time'] == expected and ev['host'] == 'node3'


def test_non_kernel_syslog_lines_are_ignored():
    text = '\n'.join([
        'Sep 10 12:00:00 h systemd[1]: app.service: A process of this unit has been killed by the OOM killer.',
        'Sep 10 12:00:00 h earlyoom[12]: Killed process 77 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB',
    ])
    assert parse(text, year=2024) == []


def test_new_year_roll_back(utc):
    mtime = 1704153600.0  # 2024-01-02T00:00:00Z
    text = 'Dec 31 23:59:00 h kernel: ' + KILL_5X + '\nJan  1 00:01:00 h kernel: ' + KILL_5X.replace('2501', '2502')
    events = parse(text, year=2024, ref_time=mtime)
    assert [e['time'] for e in events] == ['2023-12-31T23:59:00Z', '2024-01-01T00:01:00Z']


def test_kmsg_records_and_dictionary_lines():
    text = '\n'.join([
        '6,1233,252971000,-;docker0: port 2(veth1) entered blocking state',
        ' SUBSYSTEM=net',
        ' DEVICE=n7',
        '4,1234,252971105,-;python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0',
        '4,1235,252971151,-;CPU: 1 UID: 0 PID: 4694 Comm: python3 Not tainted 6.18.44 #1',
        '6,1236,252992000,-;Memory cgroup stats for /t:\\x0aanon 1000\\x0afile 20',
        '6,1237,252992466,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,'
        'oom_memcg=/t,task_memcg=/t/a,task=python3,pid=4694,uid=0',
        '3,1238,252992511,-;Memory cgroup out of memory: Killed process 4694 (python3) total-vm:221384kB, '
        'anon-rss:65280kB, file-rss:6664kB, shmem-rss:0kB, UID:0 pgtables:188kB oom_score_adj:0',
    ])
    ev = one(text, details=('memcg_stats',), boot_time=1000)
    assert ev['source'] == 'test:4'
    assert ev['uptime'] == 252.971105 and ev['time'] == '1970-01-01T00:20:52.971105Z'
    assert ev['trigger'] == {'name': 'python3', 'pid': 4694, 'gfp_mask': '0xcc0', 'order': 0, 'oom_score_adj': 0}
    assert (ev['kind'], ev['oom_memcg'], ev['task_memcg']) == ('memcg', '/t', '/t/a')
    assert ev['memcg_stats']['stats'] == {'anon': 1000, 'file': 20}


def test_journal_json_with_byte_array_message():
    head = 'gfp invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0'
    kill = u'Out of memory: Killed process 31 (caf\u00e9\xff) total-vm:10kB, anon-rss:5kB, file-rss:0kB, shmem-rss:0kB'
    raw = list(kill.encode('utf-8'))
    raw[raw.index(0xc3) + 3] = 0xff  # make it invalid UTF-8, as journald then stores a byte list
    recs = [
        {'MESSAGE': 'ignored', '_TRANSPORT': 'stdout', 'SYSLOG_IDENTIFIER': 'app'},
        {'MESSAGE': head, '_TRANSPORT': 'kernel', '__REALTIME_TIMESTAMP': '1700000000250000',
         '_SOURCE_MONOTONIC_TIMESTAMP': '48183028', '_HOSTNAME': 'j1'},
        {'MESSAGE': raw, '_TRANSPORT': 'kernel', '__REALTIME_TIMESTAMP': '1700000000260000'},
    ]
    ev = one('\n'.join(json.dumps(r) for r in recs))
    assert ev['time'] == '2023-11-14T22:13:20.250000Z' and ev['uptime'] == 48.183028 and ev['host'] == 'j1'
    assert ev['victim']['pid'] == 31 and ev['victim']['name'].startswith(u'caf')
    assert ev['trigger']['name'] == 'gfp' and ev['source'] == 'test:2'


def test_bare_messages_bytes_input():
    events = list(parse_lines([KILL_5X.encode('utf-8') + b'\n'], 'b'))
    assert events[0]['victim']['name'] == 'java' and events[0]['source'] == 'b:1'


# --- kernel eras ----------------------------------------------------------------------------

def test_2_6_18_header_without_name_and_oomkilladj():
    ev = one('oom-killer: gfp_mask=0x201d2, order=0\nOut of Memory: Killed process 3 (bash).')
    assert ev['trigger'] == {'name': None, 'pid': None, 'gfp_mask': '0x201d2', 'order': 0, 'oom_score_adj': None}
    assert ev['victim']['pid'] == 3 and ev['kind'] is None


def test_rhel6_kill_line_and_old_task_table():
    text = '\n'.join([
        'java invoked oom-killer: gfp_mask=0x201da, order=0, oom_adj=0, oom_score_adj=0',
        'Pid: 2500, comm: java Not tainted 2.6.32-754.el6.x86_64 #1',
        '[ pid ]   uid  tgid total_vm      rss cpu oom_adj oom_score_adj name',
        '[ 2500]   500  2500   410347   398810   0       0             0 java',
        'Out of memory: Kill process 2500 (java) score 919 or sacrifice child',
        'Killed process 2500, UID 500, (java) total-vm:1641388kB, anon-rss:1595164kB, file-rss:76kB',
    ])
    ev = one(text, details=('tasks',))
    assert ev['trigger']['pid'] == 2500 and ev['trigger']['oom_score_adj'] == 0
    assert ev['victim']['uid'] == 500 and ev['victim']['anon_rss_kb'] == 1595164 and ev['victim']['shmem_rss_kb'] is None
    assert ev['tasks'] == [{'pid': 2500, 'uid': 500, 'tgid': 2500, 'total_vm': 410347, 'rss': 398810, 'cpu': 0,
                            'oom_adj': 0, 'oom_score_adj': 0, 'name': 'java'}]
    assert ev['kind'] == 'global'


def test_rhel7_kill_line_uid_after_name():
    ev = one('Killed process 77 (GC Thread#9), UID 1000, total-vm:10kB, anon-rss:5kB, file-rss:1kB, shmem-rss:0kB')
    assert ev['victim']['name'] == 'GC Thread#9' and ev['victim']['uid'] == 1000 and ev['victim']['anon_rss_kb'] == 5


def test_4x_nodemask_double_space_header():
    ev = one('CPU 2/KVM invoked oom-killer: gfp_mask=0x14200ca(GFP_HIGHUSER_MOVABLE), nodemask=(null),  order=3, '
             'oom_score_adj=-500\nKilled process 9 (CPU 2/KVM) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB')
    assert ev['trigger'] == {'name': 'CPU 2/KVM', 'pid': None, 'gfp_mask': '0x14200ca', 'order': 3, 'oom_score_adj': -500}
    assert ev['victim']['name'] == 'CPU 2/KVM'


def test_oom_kill_line_cgroup2_and_global():
    memcg = one('oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a/b.slice,'
                'task_memcg=/a/b.slice/c.scope,task=my: app,pid=5,uid=7\n'
                'Memory cgroup out of memory: Killed process 5 (my: app) total-vm:1kB, anon-rss:1kB, file-rss:0kB, '
                'shmem-rss:0kB, UID:7 pgtables:4kB oom_score_adj:0')
    assert (memcg['oom_memcg'], memcg['task_memcg'], memcg['victim']['name']) == ('/a/b.slice', '/a/b.slice/c.scope', 'my: app')
    glob_ = one('oom-kill:constraint=CONSTRAINT_CPUSET,nodemask=(null),cpuset=/x,mems_allowed=0,global_oom,'
                'task_memcg=/,task=a,pid=5,uid=0\nOut of memory: Killed process 5 (a) total-vm:1kB, anon-rss:1kB, '
                'file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0')
    assert (glob_['kind'], glob_['constraint'], glob_['oom_memcg']) == ('cpuset', 'CONSTRAINT_CPUSET', None)


def test_3x_task_in_limit_of():
    ev = one('Task in /a killed as a result of limit of /b\nMemory cgroup out of memory: Kill process 4 ([x]) score 9 '
             'or sacrifice child\nKilled process 4 ([x]) total-vm:1kB, anon-rss:1kB, file-rss:0kB')
    # the header was rate-limited (or cut off): the event starts at "Task in", the first line of it left
    assert ev['kind'] == 'memcg' and ev['victim']['name'] == '[x]' and ev['source'] == 'test:1'
    assert (ev['task_memcg'], ev['oom_memcg']) == ('/a', '/b')


def test_dmesg_grep_kill_of_two_cgroup_v1_reports_keeps_each_task_in_line_with_its_own():
    def report(n):
        return ('[1.%d] Task in /docker/c%d killed as a result of limit of /docker/c%d\n'
                '[1.%d] Memory cgroup out of memory: Kill process %d (java) score 999 or sacrifice child\n'
                '[1.%d] Killed process %d (java) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n' % (n, n, n, n, n, n, n))
    events = parse(report(1) + report(2))
    assert [(e['victim']['pid'], e['task_memcg'], e['oom_memcg']) for e in events] == [
        (1, '/docker/c1', '/docker/c1'), (2, '/docker/c2', '/docker/c2')]
    # a paste that starts at "Task in": the cgroup's usage, stats and task table come before the kill
    ev = one('\tTask in /docker/c1 killed as a result of limit of /docker/c1\n'
             '\tmemory: usage 511928kB, limit 512000kB, failcnt 788433\n'
             '\tMemory cgroup stats for /docker/c1: cache:32KB rss:507732KB\n'
             '\t[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name\n'
             '\t[30866]     0 30866   299513   115900     590   182063          -998 oom\n'
             '\tMemory cgroup out of memory: Kill process 30866 (oom) score 0 or sacrifice child\n'
             '\tKilled process 30866 (oom) total-vm:1198052kB, anon-rss:463592kB, file-rss:8kB')
    assert (ev['victim']['pid'], ev['kind'], ev['task_memcg'], ev['oom_memcg']) == (30866, 'memcg', '/docker/c1', '/docker/c1')
    # but not across a header (another report's) nor past 2000 lines of something else
    kill = 'Killed process 4 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB'
    events = parse('Task in /a killed as a result of limit of /a\n'
                   'x invoked oom-killer: gfp_mask=0x0, order=0, oom_score_adj=0\n' + kill)
    assert [(e['trigger']['name'], e['task_memcg'], e['oom_memcg']) for e in events] == [('x', None, None)]
    events = parse('Task in /a killed as a result of limit of /a\n' + 'eth0: link up\n' * 2001 + kill)
    assert [(e['victim']['pid'], e['task_memcg'], e['oom_memcg']) for e in events] == [(4, None, None)]
    # a "Task in" line that nothing of a report follows is no event
    assert parse('Task in /a killed as a result of limit of /a\nmemory: usage 1kB, limit 1kB, failcnt 1') == []


def test_sacrificed_child_is_the_victim():
    ev = one('Out of memory: Kill process 10 (parent) score 900 or sacrifice child\n'
             'Killed process 11 (child) total-vm:1kB, anon-rss:1kB, file-rss:0kB')
    assert ev['victim']['pid'] == 11 and ev['kind'] == 'global'


def test_no_killable_processes_and_panic():
    events = parse('a invoked oom-killer: gfp_mask=0x0, order=0, oom_score_adj=0\n'
                   'Out of memory and no killable processes...\n'
                   'Kernel panic - not syncing: System is deadlocked on memory\n'
                   'b invoked oom-killer: gfp_mask=0x0, order=0, oom_score_adj=0\n'
                   'Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled')
    assert [(e['no_killable'], e['panic'], e['victim']) for e in events] == [(True, True, None), (False, True, None)]


def test_victim_already_exiting_is_not_a_kill():
    ev = one('a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n'
             'Memory cgroup out of memory: OOM victim 8 (a) is already exiting. Skip killing the task')
    assert ev['victim'] is None and ev['trigger']['name'] == 'a'


def test_summary_names_the_victim_when_the_excerpt_ends_before_the_kill_line():
    summary = ('oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/app,'
               'task_memcg=/app/x,task=runc:[2:INIT],pid=8,uid=1000')
    ev = one('a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n' + summary)
    assert (ev['victim']['pid'], ev['victim']['name'], ev['victim']['uid']) == (8, 'runc:[2:INIT]', 1000)
    assert ev['victim']['anon_rss_kb'] is None and ev['victims'] == [ev['victim']]
    # the kill line, when there is one, is the victim (here a child the kernel killed instead)
    ev = one(summary + '\nMemory cgroup out of memory: Killed process 9 (sh) total-vm:1kB, anon-rss:1kB, file-rss:0kB')
    assert [v['pid'] for v in ev['victims']] == [9]
    # the chosen process was exiting already: no kill
    ev = one(summary + '\nMemory cgroup out of memory: OOM victim 8 (runc:[2:INIT]) is already exiting. '
                       'Skip killing the task')
    assert ev['victim'] is None and ev['exiting']['pid'] == 8


def test_constraint_none_with_oom_memcg_is_a_cgroup_oom():
    # 4.19 to 5.0 printed CONSTRAINT_NONE for every OOM; oom_memcg= is printed for a cgroup OOM only
    summary = 'oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,%stask=a.out,pid=9,uid=-2'
    ev = one(summary % 'oom_memcg=/test1,task_memcg=/test1,')
    assert (ev['kind'], ev['constraint'], ev['oom_memcg']) == ('memcg', 'CONSTRAINT_NONE', '/test1')
    assert (ev['victim']['pid'], ev['victim']['uid']) == (9, -2)
    assert one(summary % 'global_oom,task_memcg=/,')['kind'] == 'global'


def test_oom_kill_line_retyped_or_wrapped_with_spaces_after_its_commas():
    # retyped by hand ("CONSTRAINT_NONE, global_oom,") and wrapped at a comma onto an indented line
    ev = one('15:17:28 kernel: oom-kill:constraint=CONSTRAINT_NONE, global_oom,\n'
             '                 task_memcg=/init.scope, task=find-anagrams, pid=3524, uid=1000')
    assert (ev['kind'], ev['task_memcg'], ev['victim']['pid'], ev['victim']['name'], ev['victim']['uid']) == \
        ('global', '/init.scope', 3524, 'find-anagrams', 1000)
    ev = one('oom-kill:constraint=CONSTRAINT_MEMCG, nodemask=(null), cpuset=/, mems_allowed=0, oom_memcg=/app, '
             'task_memcg=/app/x, task=runc:[2:INIT], pid=8, uid=1000')
    assert (ev['oom_memcg'], ev['task_memcg'], ev['victim']['name'], ev['victim']['uid']) == \
        ('/app', '/app/x', 'runc:[2:INIT]', 1000)


def test_line_chopped_by_the_pager_loses_its_partial_last_field():
    # journalctl's pager (less -S) marks a line cut at the screen's edge with '>'
    ev = one('oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,'
             'task_memcg=/user.slice/user-1000.slice/vte-s>\n'
             'Out of memory: Killed process 7 (a) total-vm:10kB, anon-rss:50>')
    assert ev['task_memcg'] is None and ev['victim']['pid'] == 7
    assert (ev['victim']['total_vm_kb'], ev['victim']['anon_rss_kb']) == (10, None)
    # the kernel's own '>' (a call trace's </TASK>) is no cut
    assert oom_log._drop_elision(' </TASK>') == ' </TASK>'


def test_kill_line_pasted_before_its_oom_kill_line_is_one_event():
    events = parse('Jan 09 14:15:16 h kernel: Out of memory: Killed process 5 (uvicorn) total-vm:1kB, anon-rss:1kB, '
                   'file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:4kB oom_score_adj:0\n'
                   'Jan 09 14:15:16 h kernel: oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,'
                   'mems_allowed=0,global_oom,task_memcg=/user.slice,task=uvicorn,pid=5,uid=1000')
    assert [(e['victim']['pid'], e['constraint'], e['task_memcg']) for e in events] == [
        (5, 'CONSTRAINT_NONE', '/user.slice')]


def test_kill_line_with_a_hand_aligned_name():
    ev = one('[   535] Out of memory: Killed process 124094  (python3) anon-rss:30531612kB')
    assert (ev['victim']['pid'], ev['victim']['name'], ev['victim']['anon_rss_kb']) == (124094, 'python3', 30531612)


def test_openvz_beancounter_kill_whole_or_wrapped_after_oom():
    head = 'Nov 24 12:17:04 hwnode kernel: [758955.653313] Out of memory in UB 1234: OOM '
    rest = 'killed process 21738 (php-cgi) score 0 vm:281988kB, rss:17004kB, swap:0kB'
    for text in (head + rest, head + '\n' + rest):
        ev = one(text)
        assert (ev['victim']['pid'], ev['victim']['name'], ev['victim']['anon_rss_kb']) == (21738, 'php-cgi', None)
    # on its own, a line without any of the scan's needles is not read (the two entry points agree)
    assert parse('[758955.653313] the watchdog killed process 21738 (php-cgi) score 0') == []


def test_header_whose_separators_a_blog_ate_keeps_its_order():
    ev = one('<4>[12345.342532] systemd-journal invoked oom-killer: gfp_mask=0x800d0order=2oom_score_adj=0  ')
    assert (ev['trigger']['gfp_mask'], ev['trigger']['order']) == ('0x800d0', 2)


def test_kill_line_with_two_spaces_before_the_pid():
    ev = one('Jul 22 19:16:26 kodi kernel: Out of memory: Killed process  532 (kodi.bin) total-vm:1561568kB, '
             'anon-rss:397140kB, file-rss:112348kB, shmem-rss:0kB, UID:972 pgtables:1724kB oom_score_adj:0')
    assert (ev['victim']['pid'], ev['victim']['name'], ev['victim']['uid']) == (532, 'kodi.bin', 972)


def test_header_a_mailer_broke_right_after_invoked_oom_killer():
    ev = one('[330319.766059] systemd invoked oom-killer: \n'
             'gfp_mask=0x40cc0(GFP_KERNEL|__GFP_COMP), order=1, oom_score_adj=0')
    assert (ev['trigger']['name'], ev['trigger']['gfp_mask'], ev['trigger']['order']) == ('systemd', '0x40cc0', 1)
    # a short line that is not such a header stays whole
    events = parse('[1.0] short line: \norder=1')
    assert events == []


def test_a_cpu_line_of_a_later_dump_is_not_the_trigger():
    head = ('[  118.590450] a.out invoked oom-killer: gfp_mask=0x26042c0(GFP_KERNEL), nodemask=0, order=0, '
            'oom_score_adj=1000\n[  118.910441] a.out cpuset=/ mems_allowed=0\n')
    later = '** 56 printk messages dropped ** [  464.330865] CPU: 0 PID: 10356 Comm: a.out Tainted: G  W  4.9.0+ #102'
    assert one(head + later)['trigger']['pid'] is None
    assert one(head + '[  118.910500] CPU: 0 PID: 10356 Comm: a.out Tainted: G  W  4.9.0+ #102')['trigger']['pid'] == 10356


def test_limit_of_host_is_a_global_oom():
    ev = one('[Sat Sep 11 12:24:42 2021] Task in /user.slice killed as a result of limit of host\n'
             '[Sat Sep 11 12:24:42 2021] Out of memory: Killed process 5 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB')
    assert (ev['kind'], ev['oom_memcg'], ev['task_memcg']) == ('global', None, '/user.slice')


def test_a_kill_stamped_before_the_open_header_is_another_log():
    """Two machines' excerpts pasted one after the other: the second's kill is not the first's header's."""
    first, second = parse(
        '[662381.213583] mdsd invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0\n'
        '[662381.213593] CPU: 1 PID: 1977413 Comm: mdsd Not tainted 6.8.0-1028-azure #33\n'
        '[580660.355525] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,'
        'oom_memcg=/a.service,task_memcg=/a.service,task=mdsd,pid=2002099,uid=104\n'
        '[580660.355669] Memory cgroup out of memory: Killed process 2002099 (mdsd) total-vm:12674368kB, '
        'anon-rss:10457828kB, file-rss:23436kB, shmem-rss:0kB, UID:104 pgtables:20948kB oom_score_adj:0')
    assert (first['trigger']['pid'], first['victim'], first['kind']) == (1977413, None, None)
    assert (second['trigger'], second['victim']['pid'], second['kind'], second['oom_memcg']) == \
        (None, 2002099, 'memcg', '/a.service')
    # a step back of under two seconds is lines pasted newest first: still one event
    ev = one('[100.500000] Out of memory: Killed process 7 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n'
             '[100.499000] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,'
             'task_memcg=/,task=x,pid=7,uid=0\n')
    assert ev['victim']['pid'] == 7 and ev['constraint'] == 'CONSTRAINT_NONE'


def test_a_header_cut_after_the_name_keeps_the_trigger_only_with_a_kernel_prefix():
    ev = one('> [  395.922444] mem_on_node0 invoked oom-killer\n'
             '> [  396.252655] oom-kill:constraint=CONSTRAINT_CPUSET,nodemask=(null),cpuset=test,mems_allowed=0\n'
             '> [  396.264068] Out of memory: Killed process 2614 (mem_on_node0)')
    assert (ev['trigger']['name'], ev['trigger']['gfp_mask'], ev['kind'], ev['victim']['pid']) == \
        ('mem_on_node0', None, 'cpuset', 2614)
    # the same words in prose (no kernel prefix) are no header
    assert parse('Then the java process invoked oom-killer\nmy script invoked oom-killer') == []


def test_a_bare_one_word_header_line_counts_only_when_more_of_a_report_follows():
    # a post's title, then prose: no event
    assert parse('java invoked oom-killer\n\nWe saw this twice last week.') == []
    # a line that is only "NAME invoked oom-killer", then the rest of the report: its trigger
    ev = one('```text\nycsb_bench invoked oom-killer\n'
             'oom-kill:constraint=CONSTRAINT_MEMORY_POLICY,nodemask=1,cpuset=/,mems_allowed=0-1,global_oom\n```')
    assert (ev['trigger']['name'], ev['kind'], ev['victim']) == ('ycsb_bench', 'mempolicy', None)
    ev = one('The logs showed:\n\ndockerd invoked oom-killer\n\nand later:\n\n'
             'Out of memory: Killed process 35944 (java) total-vm:9kB, anon-rss:5kB, file-rss:0kB')
    assert (ev['trigger']['name'], ev['victim']['pid']) == ('dockerd', 35944)
    # a title, then the stamped report: one event, the report's own
    ev = one('mysqld invoked oom-killer\n'
             '[ 12.300000] mysqld invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0\n'
             '[ 12.400000] Out of memory: Killed process 5 (mysqld) total-vm:9kB, anon-rss:5kB, file-rss:0kB')
    assert (ev['trigger']['gfp_mask'], ev['victim']['pid']) == ('0x100cca', 5)
    # more than one word before "invoked" is prose: the kill stands alone
    ev = one('Why mysqld invoked oom-killer\nOut of memory: Killed process 5 (mysqld) total-vm:9kB, anon-rss:5kB')
    assert ev['trigger'] is None and ev['victim']['pid'] == 5


def test_a_mail_kept_quoted_printable_is_decoded_and_its_soft_breaks_joined():
    ev = one('Content-Transfer-Encoding: quoted-printable\n'
             '[=E2=80=A6]\n'
             '[    4.338946] swapper/0 invoked oom-killer: gfp_mask=3D0x6040c0(GFP_KERN=\n'
             'EL|__GFP_COMP), nodemask=3D(null), order=3D1, oom_score_adj=3D-5\n'
             '[    4.354618] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 4.19.57.mx64.282=\n'
             ' #1\n'
             '[    4.360000] oom-kill:constraint=3DCONSTRAINT_NONE,nodemask=3D(null),cpuset=3D/,mems_allowed=3D0,=\n'
             'global_oom,task_memcg=3D/,task=3Dsleep,pid=3D77,uid=3D0\n'
             '[    4.360100] Out of memory: Killed process 77 (sleep) total-vm:1kB, anon-rss:12=\n'
             'kB, file-rss:0kB, shmem-rss:0kB, UID:0 oom_score_adj:0')
    assert ev['trigger'] == {'name': 'swapper/0', 'pid': 1, 'gfp_mask': '0x6040c0', 'order': 1, 'oom_score_adj': -5}
    assert (ev['victim']['pid'], ev['victim']['anon_rss_kb'], ev['kind'], ev['source']) == (77, 12, 'global', 'test:3')
    # after the mail, a plain kernel line keeps "pid=12" (not the byte 0x12)
    first, second = parse('[    4.36] oom-kill:constraint=3DCONSTRAINT_NONE,nodemask=3D(null),cpuset=3D/,mems_allowed=3D0,'
                          'global_oom,task_memcg=3D/,task=3Dsleep,pid=3D77,uid=3D0\n'
                          '[    9.36] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,'
                          'global_oom,task_memcg=/a,task=b,pid=12,uid=0')
    assert (first['victim']['pid'], second['victim']['pid'], second['task_memcg']) == (77, 12, '/a')
    # a plain log whose line happens to end in '=' is not taken for quoted-printable
    ev = one('[  1.0] x invoked oom-killer: gfp_mask=0x0, order=0, oom_score_adj=0\n'
             '[  1.1] audit: key=\n'
             '[  1.2] Out of memory: Killed process 5 (y) total-vm:1kB, anon-rss:3kB, file-rss:0kB')
    assert ev['victim']['anon_rss_kb'] == 3 and ev['trigger']['gfp_mask'] == '0x0'


def test_a_kill_stamped_before_an_event_opened_without_header_stays_with_it():
    """Only a header's stamp bounds its report: a document that stitched stamps keeps line order."""
    ev = one('[  933.264779] oom-kill:constraint=CONSTRAINT_MEMORY_POLICY,nodemask=1,cpuset=/,mems_allowed=0-1,'
             'global_oom,task_memcg=/s.service,task=main,pid=1733,uid=0\n'
             '[  465.878438] Out of memory: Killed process 1734 (main) total-vm:239028kB, anon-rss:236300kB, '
             'file-rss:200kB, shmem-rss:0kB, UID:0 pgtables:504kB oom_score_adj:1000')
    assert (ev['victim']['pid'], ev['kind']) == (1734, 'mempolicy')


def test_would_have_killed_is_no_kill_and_openvz_lower_case_still_is():
    ev = one('[ 4607.7] trinity-c3 invoked oom-killer: gfp_mask=0x24280ca, order=0, oom_score_adj=0\n'
             '[ 4607.8] oom_kill_process: would have killed process 749 (systemd-journal), but continuing instead...')
    assert ev['victim'] is None and ev['trigger']['name'] == 'trinity-c3'
    ev = one('Nov 24 12:17:04 hwnode kernel: [758955.653313] Out of memory in UB 1234: OOM killed process 21738 '
             '(php-cgi) score 0 vm:281988kB, rss:17004kB, swap:0kB')
    assert ev['victim']['pid'] == 21738


def test_s390_process_line_gives_the_trigger_pid():
    ev = one('Mar 17 01:33:12 t63 kernel: sh invoked oom-killer: gfp_mask=0xd0, order=0, oomkilladj=0\n'
             'Mar 17 01:33:12 t63 kernel: CPU: 3 Not tainted 2.6.28 #1\n'
             'Mar 17 01:33:12 t63 kernel: Process sh (pid: 16756, task: 000000003e6a8038, ksp: 000000003d7bf5f8)\n'
             'Mar 17 01:33:12 t63 kernel: Out of memory: kill process 16700 (make) score 10 or a child\n'
             'Mar 17 01:33:12 t63 kernel: Killed process 16756 (sh)')
    assert (ev['trigger']['pid'], ev['victim']['pid']) == (16756, 16756)


@pytest.mark.parametrize('pieces', [
    ['Task in /lxc/foo', 'killed as a result of limit of ', '/lxc/foo'],
    ['Task in /lxc/foo', 'killed as a result of limit of /lxc'],
])
def test_task_in_printed_in_pieces_gives_both_cgroups(pieces):
    text = '[15447.0] bash invoked oom-killer: gfp_mask=0xd0, order=0, oom_score_adj=0\n'
    text += ''.join('[15447.1] %s\n' % p for p in pieces)
    text += '[15447.2] Memory cgroup out of memory: Kill process 5 (bash) score 1 or sacrifice child\n'
    text += '[15447.3] Killed process 5 (bash) total-vm:1kB, anon-rss:1kB, file-rss:0kB'
    ev = one(text)
    assert (ev['task_memcg'], ev['oom_memcg'], ev['kind']) == ('/lxc/foo', pieces[-1].split()[-1], 'memcg')
    # another line between the pieces: they are not one message
    ev = one(text.replace('[15447.1] killed', '[15447.1] memory: usage 1kB, limit 1kB, failcnt 0\n[15447.1] killed'))
    assert ev['task_memcg'] is None and ev['kind'] == 'memcg'


def test_lines_shortened_by_hand_still_give_what_they_hold():
    ev = one('oom-kill: constraint=CONSTRAINT_MEMORY_POLICY, nodemask=7, task=VLLM::EngineCor\n'
             'Out of memory: Killed process 1044797 total-vm:944314492kB anon-rss:593333608kB')
    assert (ev['victim']['pid'], ev['victim']['anon_rss_kb'], ev['kind']) == (1044797, 593333608, 'mempolicy')
    ev = one('[Sat Sep 19 09:17:40 2026] python invoked oom-killer: ... oom_score_adj=944\n'
             'Memory cgroup out of memory: Killed process 3864781 (python) anon-rss:1210580kB')
    assert ev['trigger'] == {'name': 'python', 'pid': None, 'gfp_mask': None, 'order': None, 'oom_score_adj': 944}
    first, second = parse('kernel: Out of memory and no killable processes...\nkernel: watchdog invoked oom-killer')
    assert first['no_killable'] and (second['trigger']['name'], second['no_killable']) == ('watchdog', False)


def test_a_group_line_before_the_kills_makes_one_event():
    ev = one('Tasks in /k.scope are going to be killed due to memory.oom.group set\n'
             'Memory cgroup out of memory: Killed process 20121 (stress) total-vm:9kB, anon-rss:5kB\n'
             'Memory cgroup out of memory: Killed process 20094 (stress) total-vm:9kB, anon-rss:4kB')
    assert [v['pid'] for v in ev['victims']] == [20121, 20094]
    # not on the line right before the kill: it says nothing of that kill
    assert len(parse('Tasks in /k.scope are going to be killed due to memory.oom.group set\n'
                     'Memory cgroup out of memory: Kill process 20121 (stress) score 9 or sacrifice child\n'
                     'Memory cgroup out of memory: Killed process 20121 (stress) total-vm:9kB, anon-rss:5kB\n'
                     'Memory cgroup out of memory: Killed process 20094 (stress) total-vm:9kB, anon-rss:4kB')) == 2


def test_a_log_quoted_twice_is_one_kill_but_two_kills_without_sizes_stay_two():
    block = ('Mar 13 03:14:50 web kernel: Out of memory: Kill process 31809 (mysqld) score 52 or sacrifice child\n'
             'Mar 13 03:14:50 web kernel: Killed process 31809, UID 501, (mysqld) total-vm:819272kB, '
             'anon-rss:103500kB, file-rss:3880kB\n')
    ev = one(block + 'and again:\n' + block)
    assert (ev['victim']['pid'], ev['victim']['uid'], ev['source']) == (31809, 501, 'test:1')
    # a later kill of the same sizes is another kill; so is an old kernel's line without sizes
    assert len(parse(block + block.replace('03:14:50', '03:14:51'))) == 2
    line = 'Jul 19 05:19:24 asl131 kernel: Out of Memory: Killed process 2368 (jserver).\n'
    assert len(parse(line + line)) == 2


def test_an_unstamped_kill_line_quoted_again_before_any_header_is_one_kill():
    a = ('Out of memory: Killed process 179407 (python) total-vm:1300024kB, anon-rss:453436kB, file-rss:2944kB, '
         'shmem-rss:0kB, UID:0 pgtables:1288kB oom_score_adj:0\n\n')
    b = 'Killed process 179325 (python) total-vm:1300028kB, anon-rss:455484kB, file-rss:2816kB, shmem-rss:0kB\n\n'
    header = 'python invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0\n'
    events = parse(a + b + a + header)
    assert [e['victim'] and e['victim']['pid'] for e in events] == [179407, 179325, None]
    # a header between them: each its own invocation's kill
    events = parse(header + a + header + a)
    assert [e['victim']['pid'] for e in events] == [179407, 179407]


def test_a_kill_stamped_well_before_the_open_header_by_wall_clock_is_its_own_event():
    # rsyslog's RFC 3339 stamps, no kernel uptime: a day-old oom-kill: and kill line pasted after a header
    events = parse('2026-09-16T05:28:18.660823+00:00 web-1 kernel: chromium invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), '
                   'order=0, oom_score_adj=300\n'
                   '2026-09-15T05:34:05.102898+00:00 web-1 kernel: Memory cgroup out of memory: Killed process 198991 '
                   '(chromium) total-vm:1kB, anon-rss:105352kB, file-rss:0kB')
    assert who(events) == [('chromium', None), (None, 198991)]
    # a second later is the same report
    ev = one('Sep 16 05:28:18 web-1 kernel: chromium invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, '
             'oom_score_adj=300\nSep 16 05:28:19 web-1 kernel: Out of memory: Killed process 5 (chromium) '
             'total-vm:1kB, anon-rss:1kB, file-rss:0kB')
    assert (ev['trigger']['name'], ev['victim']['pid']) == ('chromium', 5)


def test_kmsg_records_quoted_in_strings_with_their_messages_again():
    # a test file: each /dev/kmsg record inside a string, its message once more as the expected value
    text = """    message: "Out of memory: Kill process 14910 (code) score 300 or sacrifice child",
    parse("3,7002,192203018349,-;Out of memory: Kill process 14910 (code) score 300 or sacrifice child")
    message: "Killed process 14910 (code) total-vm:810936kB, anon-rss:10052kB, file-rss:0kB, shmem-rss:0kB",
    parse("3,7003,192203018400,-;Killed process 14910 (code) total-vm:810936kB, anon-rss:10052kB, file-rss:0kB, shmem-rss:0kB")
    message: "containerd invoked oom-killer: gfp_mask=0x14200ca(GFP_HIGHUSER_MOVABLE), nodemask=(null), order=0, oom_score_adj=0",
    parse("4,7005,192206114689,-;containerd invoked oom-killer: gfp_mask=0x14200ca(GFP_HIGHUSER_MOVABLE), nodemask=(null), order=0, oom_score_adj=0")
"""
    first, second = parse(text)
    assert (first['victim']['pid'], first['kind'], first['trigger']) == (14910, 'global', None)
    assert (second['trigger']['name'], second['trigger']['gfp_mask'], second['victim']) == ('containerd', '0x14200ca', None)
    # the record's stamp is the kernel's (microseconds since boot)
    assert parse('x = "6,1,5000000,-;a invoked oom-killer: gfp_mask=0x0, order=0, oom_score_adj=0"')[0]['uptime'] == 5.0


def test_a_task_less_2_6_header_in_a_syslog_without_the_kernel_tag():
    # 2.6.x's header names no task, and a syslog without the kernel's tag took its first word for a program
    ev = one('Nov 17 06:19:30 sleepy oom-killer: gfp_mask=0xd0\n'
             'Nov 17 06:19:30 sleepy Out of Memory: Killed process 21982 (pickup).')
    assert (ev['trigger']['gfp_mask'], ev['victim']['pid'], ev['kind']) == ('0xd0', 21982, None)


def test_an_android_prefix_glued_to_the_trigger_name_is_dropped():
    # Android's "[63651.040008s][pid:2912,cpu3,sh]" glued to the trigger's name
    ev = one('<4>[63651.040008s][pid:2912,cpu3,sh]sh invoked oom-killer: gfp_mask=0x0, order=0, oom_score_adj=-1000')
    assert ev['trigger']['name'] == 'sh'


def test_a_trigger_name_that_ends_in_a_bracket_keeps_it():
    assert one('runc:[2:INIT] invoked oom-killer: gfp_mask=0xd0, order=0, oom_score_adj=997')['trigger']['name'] == \
        'runc:[2:INIT]'


def test_a_panic_quoted_in_prose_is_no_event_the_kernel_line_is():
    assert parse('And at last "Kernel panic - not syncing: Out of memory and no killable processes..."') == []
    assert one('[ 5.0] Kernel panic - not syncing: Out of memory and no killable processes...')['panic'] is True


def test_an_oom_kill_line_continued_with_backslashes():
    # as in a shell
    ev = one('    Sep  3 10:00:05 node1 kernel: [34268134.409242] \\\n'
             '    oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=2cc8,\\\n'
             '    mems_allowed=0,oom_memcg=/kubepods/burstable/pod62,\\\n'
             '    task_memcg=/kubepods/burstable/pod62/2cc8,\\\n'
             '    task=framework,pid=3319125,uid=5000')
    assert (ev['oom_memcg'], ev['task_memcg'], ev['victim']['pid'], ev['victim']['uid']) == \
        ('/kubepods/burstable/pod62', '/kubepods/burstable/pod62/2cc8', 3319125, 5000)


def test_a_rhel7_oom_kill_line_without_a_constraint():
    ev = one('oom-kill:,cpuset=bbd5,mems_allowed=0-1,oom_memcg=/kubepods/pod6,task_memcg=/kubepods/pod6/bbd5,'
             'task=runc:[2:INIT],pid=12788,uid=0')
    assert (ev['constraint'], ev['kind'], ev['oom_memcg'], ev['victim']['pid']) == (None, 'memcg', '/kubepods/pod6', 12788)


def test_words_of_a_post_after_a_constraint_are_no_oom_kill_line():
    assert parse('oom-kill:constraint=CONSTRAINT_MEMCG container was out of memory') == []
    assert one('oom-kill:constraint=CONSTRAINT_MEMCG ...')['constraint'] == 'CONSTRAINT_MEMCG'


def test_a_cgroup_path_with_a_space_in_it_is_none_unless_the_task_path_proves_it():
    # cut and joined again, or text after it: the task's path is none; the OOM cgroup's path is the
    # task's cgroup or one above it, so that path proves where a cut was
    sel = '\nMemory cgroup out of memory: Kill process 5 (bash) score 0 or sacrifice child'
    ev = one('Task in /kubepods/pod9/0249 killed as a result of limit of /kubepo ds/pod9/0249' + sel)
    assert (ev['task_memcg'], ev['oom_memcg'], ev['kind']) == ('/kubepods/pod9/0249', '/kubepods/pod9/0249', 'memcg')
    ev = one('Task in /kubepods/pod9/0249 killed as a result of limit of /kubepo ds/pod9' + sel)
    assert (ev['task_memcg'], ev['oom_memcg']) == ('/kubepods/pod9/0249', '/kubepods/pod9')
    ev = one('Task in /kubepods/pod9/0249 killed as a result of limit of /kubepo ds/pod7' + sel)
    assert (ev['task_memcg'], ev['oom_memcg'], ev['kind']) == ('/kubepods/pod9/0249', None, 'memcg')
    ev = one('Task in /kubepods/pod9/02 49 killed as a result of limit of /kubepo ds/pod9' + sel)
    assert (ev['task_memcg'], ev['oom_memcg']) == (None, None)
    # a "Task in" path with a space is none, so nothing proves the limit's
    ev = one('Task in /my app/web killed as a result of limit of /my app' + sel)
    assert (ev['task_memcg'], ev['oom_memcg']) == (None, None)


def test_an_oom_memcg_path_wrapped_and_joined_with_a_space_is_proven_by_task_memcg():
    line = ('oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=ef80,mems_allowed=0,oom_memcg=/kubepods/'
            'burstable/podfbdfe8e3-1c87-4ff2-907 c-b2ec8e25d012,task_memcg=/kubepods/burstable/podfbdfe8e3-1c87-'
            '4ff2-907c-b2ec8e25d012/ef80,task=manager,pid=966,uid=0')
    ev = one(line)
    assert (ev['oom_memcg'], ev['victim']['pid']) == ('/kubepods/burstable/podfbdfe8e3-1c87-4ff2-907c-b2ec8e25d012', 966)
    assert one(line.replace('task_memcg=/kubepods/burstable', 'task_memcg=/kubepods/besteffort'))['oom_memcg'] is None
    # the same space in both: a cgroup named so, as printed
    ev = one(line.replace('907 c', '907c').replace('/podfbd', '/my podfbd'))
    assert (ev['oom_memcg'], ev['task_memcg']) == ('/kubepods/burstable/my podfbdfe8e3-1c87-4ff2-907c-b2ec8e25d012',
                                                   '/kubepods/burstable/my podfbdfe8e3-1c87-4ff2-907c-b2ec8e25d012/ef80')


@pytest.mark.parametrize('quote', ['"', "'", '`'])
def test_an_elided_header_quoted_in_a_sentence_is_no_event(quote):
    # a README explaining what the log shows (tests/unit/fixtures/oom-logs/601-*)
    assert parse('for java application you see %sjava invoked oom-killer: ...%s' % (quote, quote)) == []
    # the kernel's own line, or one a prefix of no known shape carries, still opens an event
    assert one('[ 5.0] java invoked oom-killer: ...')['trigger']['name'] == 'java'


@pytest.mark.parametrize('quote', ['"', "'", '`'])
def test_a_trigger_name_loses_the_quote_it_was_put_in(quote):
    ev = one('%sdockerd invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=-500%s' % (quote, quote))
    assert ev['trigger']['name'] == 'dockerd'


@pytest.mark.parametrize('after', ['```', 'and then the pod restarted'])
def test_an_excerpt_cut_after_the_oom_kill_line_names_its_victim_whatever_follows(after):
    ev = one('[Thu Apr  1 16:45:10 2021] [  11638]     0 11638  2109807    76320  9076736  1045307          -997 uwsgi\n'
             '[Thu Apr  1 16:45:10 2021] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=a07d3c19,'
             'mems_allowed=0,oom_memcg=/docker/4284/kubelet/kubepods/pod17,task_memcg=/docker/4284/kubelet/'
             'kubepods/pod17/a07d3c19,task=uwsgi,pid=11638,uid=0\n' + after)
    assert (ev['victim']['pid'], ev['victim']['name'], ev['victim']['uid'], ev['kind']) == (11638, 'uwsgi', 0, 'memcg')


def test_text_longer_than_a_kernel_message_is_not_the_rest_of_a_line():
    kill = '[ 9.0] Out of memory: Killed process 5 (a) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB,\n'
    # a wrapped piece is joined ...
    assert one(kill + '  UID:1234 pgtables:4kB oom_score_adj:0')['victim']['uid'] == 1234
    # ... but not past printk's 1 KiB: pasted junk (a run of NULs, a wall of text) ends the line
    assert one(kill + '\x00' * 1100 + ' UID:1234 pgtables:4kB oom_score_adj:0')['victim']['uid'] is None
    junk = ''.join('more text %d, with commas,\n' % i for i in range(200))
    assert one(kill + junk + 'UID:1234 pgtables:4kB')['victim']['uid'] is None


def test_lines_a_mailer_broke_early_are_joined():
    ev = one('Creating journal (131072 blocks): [   31.251333] mkfs.ext4 invoked\n'
             'oom-killer: gfp_mask=0x101cc0(GFP_USER|__GFP_WRITE), order=0,\n'
             'oom_score_adj=0\n'
             '[   31.910012] Out of memory: Killed process 268 (polkitd)\n'
             'total-vm:72804kB, anon-rss:2948kB, file-rss:7568kB, shmem-rss:0kB,\n'
             'UID:998 pgtables:80kB oom_score_adj:0')
    assert (ev['trigger']['name'], ev['trigger']['gfp_mask'], ev['trigger']['oom_score_adj']) == ('mkfs.ext4', '0x101cc0', 0)
    assert (ev['victim']['pid'], ev['victim']['anon_rss_kb'], ev['victim']['uid'], ev['victim']['oom_score_adj']) == \
        (268, 2948, 998, 0)
    ev = one('> InputReader invoked oom-killer: gfp_mask=0x240c2c0\n'
             '> (GFP_KERNEL|__GFP_NOWARN|__GFP_COMP|__GFP_ZERO), nodemask=0, order=3,\n'
             '> oom_score_adj=-900')
    assert (ev['trigger']['name'], ev['trigger']['order'], ev['trigger']['oom_score_adj']) == ('InputReader', 3, -900)
    # a short line that is whole stays whole: the next line is another record
    first, second = parse('[ 1.0] Out of memory: Killed process 5 (a)\nsomething else entirely\n'
                          '[ 9.0] Out of memory: Killed process 6 (b)')
    assert (first['victim']['pid'], second['victim']['pid']) == (5, 6)


def test_kernel_lines_cut_inside_a_field_name_are_joined_without_a_space():
    # cut at no fixed width inside "oom_memcg", "task_memcg" and "file-rss" (the shape of an LKML
    # post of 2025, tests/unit/fixtures/oom-logs/575-*); a field that ends whole continues nothing
    ev = one('[   56.419654] \n'
             'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom\n'
             '_memcg=/test512mb,task_m\n'
             'emcg=/test512mb/app,task=stress,pid=1122,uid=0\n'
             '[   56.419663] Memory cgroup out of memory: Killed process 1122 (stress) \n'
             'total-vm:719740kB, anon-rss:522880kB, file-rss\n'
             ':536kB, shmem-rss:0kB, UID:0 pgtables:1072kB oom_score_adj:-7\n'
             'order=3 was the first thing I tried')
    assert (ev['oom_memcg'], ev['task_memcg'], ev['victim']['pid'], ev['victim']['uid']) == \
        ('/test512mb', '/test512mb/app', 1122, 0)
    assert (ev['victim']['anon_rss_kb'], ev['victim']['oom_score_adj']) == (522880, -7)


def test_dmesg_records_run_together_on_one_line_are_cut_apart():
    # the newlines between records lost in a copy (tests/unit/fixtures/oom-logs/513-*): each stamp glued to the
    # text before it starts a record of its own
    ev = one('[193038.106468] Task in /docker/0f2b killed as a result of limit of /docker/0f2b[193038.106478] memory: '
             'usage 524288kB, limit 524288kB, failcnt 77[193038.106574] Memory cgroup out of memory: Kill process '
             '27281 (java) score 1027 or sacrifice child[193038.106580] Killed process 27281 (java) total-vm:4613208kB, '
             'anon-rss:517316kB, file-rss:20168kB, shmem-rss:0kB')
    assert (ev['oom_memcg'], ev['task_memcg'], ev['victim']['pid'], ev['victim']['anon_rss_kb']) == \
        ('/docker/0f2b', '/docker/0f2b', 27281, 517316)
    # a stamp after a separator is a prefix as before ("kernel:[...]", a quote, a printk level)
    for line in ('Sep 10 12:00:00 db1 kernel:[ 8811.001234] ', '"[ 8811.001234] ', '<4>[ 8811.001234] '):
        assert one(line + 'Out of memory: Killed process 5 (a) total-vm:1kB, anon-rss:1kB')['victim']['pid'] == 5


def test_a_header_shown_after_its_kill_joins_that_event():
    # a post that quotes the kill, then "the lines right before it" (tests/unit/fixtures/oom-logs/651-* and
    # 656-*): the header is stamped just before the event's first line, on the same host
    kill = ('Apr  6 06:43:33 exo kernel: [1504351.813020] Out of memory: Kill process 8055 (ruby) score 267 or sacrifice child\n'
            'Apr  6 06:43:33 exo kernel: [1504351.813082] Killed process 8055 (ruby) total-vm:2159008kB, anon-rss:1077748kB\n')
    header = ('Apr  6 06:43:33 %s kernel: [%s] mysqld invoked oom-killer: gfp_mask=0x201da, order=0, oom_score_adj=0\n'
              'Apr  6 06:43:33 %s kernel: [%s] CPU: 0 PID: 1251 Comm: mysqld Tainted: GF 3.13.0-24-generic #46-Ubuntu\n')
    ev = one(kill + header % ('exo', '1504351.812543', 'exo', '1504351.812577'), year=2015)
    assert (ev['trigger']['name'], ev['trigger']['pid'], ev['victim']['pid']) == ('mysqld', 1251, 8055)
    assert ev['uptime'] == 1504351.812543
    # a header stamped after the kill, more than 2 s before it, or on another host opens its own event
    for host, first, second in (('exo', '1504351.913020', '1504351.913050'), ('exo', '1504348.000000', '1504348.000030'),
                                ('db2', '1504351.812543', '1504351.812577')):
        events = parse(kill + header % (host, first, host, second), year=2015)
        assert [(e['trigger'] or {}).get('name') for e in events] == [None, 'mysqld'], (host, first)


def test_sizes_and_a_lower_case_kill_line_as_a_poster_retyped_them():
    # "killed process" and "kb" retyped after another record's stamp, and a space after "total-vm:" (644-*)
    ev = one('[1668002.926214] Out of memory: Kill process 16765 (mysqld) score 176 or sacrifice child '
             '[1668002.935614] killed process 16765 (mysqld) total-vm: 1012836kb, anon-rss:178840kb, file-rss:0kb ')
    assert (ev['victim']['pid'], ev['victim']['total_vm_kb'], ev['victim']['anon_rss_kb']) == (16765, 1012836, 178840)
    # lower case after other words is still no kill ("would have killed process")
    assert parse('[ 5.1] oom: would have killed process 5 (a) total-vm:1kB, anon-rss:1kB') == []


def test_thousands_of_kill_lines_run_into_one_line_each_count_without_deep_recursion():
    # hostile or broken input: the split of kill lines run together once recursed once per kill and
    # raised RecursionError past about a thousand of them in one line
    line = ''.join('Killed process %d (x) ' % pid for pid in range(1000, 3500))
    assert len(line) < 65536
    victims = [v['pid'] for e in parse('[ 5.0] Out of memory: ' + line) for v in e['victims']]
    assert victims == list(range(1000, 3500))
    # and as many records glued to one another by their stamps
    line = ''.join('a[%d.000001] Killed process %d (x) ' % (pid, pid) for pid in range(1000, 2500))
    assert len(line) < 65536
    assert len([v for e in parse(line) for v in e['victims']]) == 1500


def test_an_oom_reaper_line_just_before_its_kill_line_as_journalctl_r_prints_them():
    # newest first (tests/unit/fixtures/oom-logs/712-*): the reaper line, then the kill
    noise = ''.join('Sep 13 15:08:%02d h kernel: e1000e: eth0 NIC Link is Up\n' % i for i in range(40))
    text = ('Sep 13 15:08:56 h kernel: oom_reaper: reaped process 142701 (convert), now anon-rss:0kB, file-rss:0kB\n'
            'Sep 13 15:08:56 h kernel: Out of memory: Killed process 142701 (convert) total-vm:25299152kB, '
            'anon-rss:24120172kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:47588kB oom_score_adj:0\n')
    for data in (text, noise + text, noise + text.replace('reaped process 142701 (convert), now', 'unable to reap pid:142701 now')):
        victims = [v for e in oom_log.parse_stream(io.BytesIO(data.encode()), year=2021) for v in e['victims']]
        assert [(v['pid'], v['reaped']) for v in victims] == [(142701, 'unable' not in data)]
    # a reaper line far before a kill of the same pid is another kill's
    far = text.replace('\nSep 13 15:08:56 h kernel: Out', '\n' + noise + 'Sep 13 15:08:56 h kernel: Out')
    assert [v['reaped'] for e in parse(far, year=2021) for v in e['victims']] == [False]


def test_a_selection_line_retyped_without_a_space_before_the_name():
    ev = one('Out of memory: Kill process 22667(mongod) score 238 or sacrifice child')
    assert (ev['victim'], ev['kind']) == (None, 'global')


def test_printk_level_left_mid_line_is_not_part_of_the_trigger_name():
    ev = one('>  [<c01484c4>] <4>cc1 invoked oom-killer: gfp_mask=0x201d2, order=0, oomkilladj=0')
    assert (ev['trigger']['name'], ev['trigger']['gfp_mask']) == ('cc1', '0x201d2')


@pytest.mark.parametrize('panic, kind', [
    ('Kernel panic - not syncing: Out of memory and no killable processes...', 'global'),
    ('Kernel panic - not syncing: System is deadlocked on memory', 'global'),
    ('Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled', 'global'),
    ('Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled', None),
])
def test_an_oom_panic_says_global_unless_panic_on_oom_is_compulsory(panic, kind):
    ev = one('[  905.150049] kworker/0:1 invoked oom-killer: gfp_mask=0x280da, order=0, oom_score_adj=0\n'
             '[  905.154572] kworker/0:1 cpuset=/ mems_allowed=0\n'
             '[  905.503378] %s' % panic)
    assert (ev['panic'], ev['kind'], ev['victim']) == (True, kind, None)


def test_localised_dmesg_t_stamp_keeps_its_year_and_a_masked_gfp_mask_is_none():
    ev = one('[ven. nov. 28 07:26:44 2025] postmaster invoked oom-killer: gfp_mask=0x62****(GFP_HIGHUSER_MOVABLE|'
             '__GFP_ZERO), order=0, oom_score_adj=0')
    assert ev['time'] == '2025-11-28T07:26:44Z'
    assert (ev['trigger']['name'], ev['trigger']['gfp_mask'], ev['trigger']['order']) == ('postmaster', None, 0)


def test_one_header_pasted_twice_with_its_kernel_stamp_is_one_event():
    head = '[104914.037949] flexi_logger-fl invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE), order=0, ' \
           'oom_score_adj=0\n'
    ev = one(head + 'the full log:\n' + head + '[104914.037960] CPU: 3 PID: 2648 Comm: flexi_logger-fl Not tainted')
    assert ev['trigger']['pid'] == 2648
    # the same trigger again with a later stamp is another invocation
    later = head.replace('104914.037949', '104915.000001')
    assert len(parse(head + later)) == 2


def test_a_terminal_wrap_turned_into_padding_is_joined_again():
    row = '[67690.815993] Killed process 4833 (python) total-vm:1059548kB, anon-rss:830480k'
    assert len(row) == 80
    ev = one(row + ' ' * 117 + 'B, file-rss:2796kB, shmem-rss:0kB')
    assert (ev['victim']['anon_rss_kb'], ev['victim']['file_rss_kb']) == (830480, 2796)
    # a row that ended with its own blank keeps it: the words stay apart
    row = '[  118.5725250] Out of memory: Kill process 9485 (a.out) score 999 or sacrifice '
    assert len(row) == 80
    assert oom_log._unpad(row + ' ' * 117 + 'child') == row + 'child'


def test_2_6_kill_line_prefixes_name_cpuset_and_mempolicy():
    assert one('No available memory (MPOL_BIND): Killed process 1267 (rc).')['kind'] == 'mempolicy'
    ev = one('Nov 28 16:19:52 ic4 kernel: No available memory in cpuset: Killed process 679783 (ncks).')
    assert (ev['kind'], ev['victim']['pid'], ev['victim']['name']) == ('cpuset', 679783, 'ncks')


def test_lower_case_mem_info_block_makes_a_header_only_report_global():
    ev = one('audacious invoked oom-killer: gfp_mask=0xd0, order=0, oomkilladj=0\nMem-info:\n'
             'DMA per-cpu:\ncpu 0 hot: high 0, batch 1 used:0')
    assert ev['kind'] == 'global' and ev['victim'] is None


def test_short_kill_line_a_mailer_broke_after_a_comma_is_joined():
    ev = one('[   90.272000] Killed process 192 (malloc) vsz:19376kB,\nanon-rss:13452kB, file-rss:0kB')
    assert (ev['victim']['total_vm_kb'], ev['victim']['anon_rss_kb']) == (19376, 13452)


def test_header_inside_a_json_string_keeps_its_last_number():
    events = parse('  "textPayload": "[195998.443208] node invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, '
                   'oom_score_adj=991\\r\\n",\n'
                   '  {"message": "a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=1, oom_score_adj=-998"}')
    assert [(e['trigger']['name'], e['trigger']['order'], e['trigger']['oom_score_adj']) for e in events] == [
        ('node', 0, 991), ('a', 1, -998)]


def test_group_kill_lines_are_separate_kills():
    events = parse('Memory cgroup out of memory: Killed process 1 (a) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n'
                   'Memory cgroup out of memory: Killed process 2 (a) total-vm:1kB, anon-rss:1kB, file-rss:0kB')
    assert [e['victim']['pid'] for e in events] == [1, 2]


# --- event boundaries and damage ---------------------------------------------------------------

def test_rate_limited_kill_without_header_and_header_without_kill():
    events = parse('x invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n'
                   'y invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n'
                   'Killed process 4 (y) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n'
                   'Killed process 5 (z) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n')
    assert who(events) == [('x', None), ('y', 4), (None, 5)]
    assert [e['source'] for e in events] == ['test:1', 'test:2', 'test:4']


def test_interleaved_unrelated_lines_and_memory_blocks():
    text = '\n'.join([
        '[ 1.0] x invoked oom-killer: gfp_mask=0x280da, order=0, oom_score_adj=0',
        '[ 1.0] e1000e: eth0 NIC Link is Up',
        '[ 1.0] Mem-Info:',
        '[ 1.0] active_anon:5 inactive_anon:6 isolated_anon:0',
        '        free:7 slab_reclaimable:8',
        '[ 1.0] Node 0 DMA free:7124kB min:412kB',
        '[ 1.0] Free swap  = 0kB',
        '[ 1.0] Total swap = 1024kB',
        '[ 1.0] 445340 pages RAM',
        '[ 1.0] usb 1-1: new device',
        '[ 1.1] Out of memory: Killed process 7 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB',
        '[ 1.1] oom_reaper: reaped process 7 (x), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB',
    ])
    ev = one(text, details=('meminfo',))
    assert ev['meminfo'] == {'active_anon': 5, 'inactive_anon': 6, 'isolated_anon': 0, 'free': 7,
                             'slab_reclaimable': 8, 'free_swap_kb': 0, 'total_swap_kb': 1024, 'pages_ram': 445340}
    assert ev['reaped'] is True and ev['kind'] == 'global'


def test_reaper_for_other_pid_does_not_count():
    ev = one('Killed process 7 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n'
             'oom_reaper: reaped process 8 (y), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB')
    assert ev['reaped'] is False


@pytest.mark.parametrize('damaged', [
    'Killed process 48',                     # pid cut: could be 48xxx
    'Killed process',
    'Killed process abc (x)',
    'Out of memory: Killed process -1 (x)',
])
def test_truncated_kill_lines_never_give_a_wrong_pid(damaged):
    assert parse(damaged) == []


def test_truncated_kill_line_keeps_what_is_complete():
    ev = one('Memory cgroup out of memory: Killed process 483880 (python3) total-vm:293428kB, anon-...')
    assert ev['victim']['pid'] == 483880 and ev['victim']['total_vm_kb'] == 293428
    assert ev['victim']['anon_rss_kb'] is None
    ev = one('Killed process 4838 (pyth')
    assert ev['victim']['pid'] == 4838 and ev['victim']['name'] is None
    ev = one('Killed process 5 (a) total-vm:1kB, anon-rss:12')
    assert ev['victim']['anon_rss_kb'] is None


def test_binary_junk_is_tolerated():
    junk = b'\x00\xff\xfe garbage \x80\x81 Killed process \xff\n' + os.urandom(4096).replace(b'\n', b'') + b'\n'
    data = junk + b'[ 1.0] Out of memory: Killed process 12 (w\xffx) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n' + junk
    events = list(parse_stream(io.BytesIO(data), 'j'))
    assert [e['victim']['pid'] for e in events] == [12]
    assert events[0]['victim']['name'] == u'w\ufffdx'


@pytest.mark.parametrize('chunk', [7, 64, 1000])
def test_stream_chunks_and_segments_agree(chunk):
    data = b''.join(open(p, 'rb').read() for p in sorted(glob.glob(os.path.join(FIXTURES, '*.log'))))
    whole = list(parse_lines(data.decode('utf-8', 'replace').splitlines(), 'x', details=ALL))
    assert list(parse_stream(io.BytesIO(data), 'x', details=ALL, chunk_size=chunk)) == whole
    cut = data.index(b'\n', len(data) // 3) + 1
    stats = {}
    first = list(parse_stream(io.BytesIO(data), 'x', end=cut, stats=stats, chunk_size=chunk))
    assert stats['lines_at_end'] == data[:cut].count(b'\n') and stats['lines'] >= stats['lines_at_end']
    assert all(int(e['source'][2:]) <= stats['lines'] for e in first)


@pytest.mark.parametrize('chunk', [1, 7, 64, 4096])
def test_a_verbose_entry_header_in_the_chunk_before_its_message_still_stamps_it(chunk):
    data = open(glob.glob(os.path.join(FIXTURES, '432-*.log'))[0], 'rb').read()
    want = [(e['epoch'], e['line']) for e in oom_log.parse_lines(data.decode('utf-8').splitlines())]
    assert want[0][0] is not None
    assert [(e['epoch'], e['line']) for e in oom_log.parse_stream(io.BytesIO(data), chunk_size=chunk)] == want


@pytest.mark.parametrize('chunk', [1024, 4096, 8192])
def test_a_verbose_header_at_the_start_of_the_stream_far_before_its_message(chunk):
    # Fewer than oom_scan.ENTRY_MAX bytes came before the MESSAGE= line's chunk, and the header is
    # the stream's first line, some KiB before its MESSAGE= line (a long field in between).
    head = (b'Tue 2024-09-10 12:00:00.250000 UTC [s=4f8b2c1d9e7a4b6c8d0e1f2a3b4c5d6e;i=1a2b;'
            b'b=0123456789abcdef0123456789abcdef;m=20d1f3a2b;t=621c5a1b2c3d4;x=9a8b7c6d5e4f3a2b]\n')
    field = b'    _CMDLINE=' + b'x' * 9000 + b'\n'
    kill = (b'    MESSAGE=Out of memory: Killed process 2501 (java) total-vm:4096kB, anon-rss:2048kB, '
            b'file-rss:8kB, shmem-rss:0kB, UID:1000 pgtables:64kB oom_score_adj:300\n')
    data = head + field + kill
    assert len(data) < oom_scan.ENTRY_MAX
    events = list(oom_log.parse_stream(io.BytesIO(data), chunk_size=chunk))
    assert [(e['epoch'], e['line']) for e in events] == [(1725969600.25, 3)]     # 2024-09-10T12:00:00.25Z


# --- the chunk scan of parse_stream ---------------------------------------------------------

NEAR_MISSES = [
    'systemd[1]: session-3.scope: Killing process 812 (sleep) with signal SIGKILL.',
    'nfs: server filer01 not responding, still trying',
    'audit: Killed by the user; will fill the queue',
    'Killed processes: none',  # a hit of 'Killed process' that is no kill line
    'foo: oom-kil is not a needle, Killed\tprocess neither',
]


def test_newlines_counts_every_part():
    data = b''.join(b'line %d %s\n' % (i, b'x' * (i % 97)) for i in range(3000)) + b'tail without newline'
    size = len(data)
    for start, end in [(0, None), (0, size), (1, size), (0, 10), (5, 5), (100, 4000), (17, size - 3), (9000, 9000 + 4096)]:
        assert newlines(data, start, end) == data.count(b'\n', start, end)
    assert newlines(b'') == 0 and newlines(b'\n' * 5000) == 5000


def _search(how, monkeypatch):
    """Make anchors() search with `how` ('strstr', 'memmem' or 'python'), or skip where the C library lacks it."""
    if how == 'python':
        monkeypatch.setattr(oom_scan, 'MEMMEM', None)
        return
    if oom_scan.MEMMEM is None or (how == 'strstr' and oom_scan.STRSTR is None):
        pytest.skip('the C library has no %s(3) reachable through ctypes here' % how)
    if how == 'memmem':
        monkeypatch.setattr(oom_scan, 'STRSTR', None)


def _hit_lines(data, hits):
    """(line start, needle) of each hit, insisting every hit is the start of a needle."""
    out = []
    for at in hits:
        needle = [n for n in NEEDLES if data.startswith(n, at)]
        assert len(needle) == 1, (at, data[at:at + 20])
        out.append((data.rfind(b'\n', 0, at) + 1, needle[0]))
    return out


def _needle_lines(data, start, end):
    """(line start, needle) for each needle wholly inside data[start:end], once per line."""
    return sorted({(data.rfind(b'\n', 0, i) + 1, n) for n in NEEDLES for i in range(start, end - len(n) + 1)
                   if data.startswith(n, i)})


@pytest.mark.parametrize('how', ['strstr', 'memmem', 'python'])
def test_anchor_hits_are_one_per_needle_and_line_that_holds_it(how, monkeypatch):
    _search(how, monkeypatch)
    text = '\n'.join(NEAR_MISSES + ['Killed process 5 (a)', 'oom-killoom-kill', 'KilledKilled process 6 (b)',
                                    'x invoked oom-killer: gfp_mask=0x0', 'Killed', 'Killed ' * 50]) + '\n'
    data = text.encode('ascii') * 3
    hits = anchors(data, 0, len(data), SCAN_NEEDLES)
    assert hits == sorted(hits) and sorted(_hit_lines(data, hits)) == _needle_lines(data, 0, len(data))
    # bounds: only hits wholly inside data[start:end]
    start, end = data.index(b'oom-killoom'), data.index(b'oom-killoom') + 12
    assert anchors(data, start, end, SCAN_NEEDLES) == [start]
    # a hit that starts inside but ends past `end` is not one; nor is one that starts before `start`
    assert anchors(data, start, start + 8, SCAN_NEEDLES) == [start]
    assert anchors(data, start, start + 7, SCAN_NEEDLES) == [] and anchors(data, start + 1, start + 9, SCAN_NEEDLES) == []
    # a buffer that is not bytes (a bytearray from another reader) takes CPython's own search
    hits = anchors(bytearray(data), 0, len(data), SCAN_NEEDLES)
    assert sorted(_hit_lines(data, hits)) == _needle_lines(data, 0, len(data))


@pytest.mark.parametrize('how', ['strstr', 'memmem', 'python'])
def test_anchor_hits_after_nul_bytes_are_found(how, monkeypatch):
    """strstr ends at a NUL: binary junk before a kill line must not hide it."""
    _search(how, monkeypatch)
    data = b'junk \x00\x00 more\nKilled process 5 (a) total-vm:1kB\n\x00oom-kill:constraint=CONSTRAINT_NONE\n'
    want = [data.index(b'Killed'), data.index(b'oom-kill')]
    assert anchors(data, 0, len(data), SCAN_NEEDLES) == want
    assert anchors(data, 0, want[1] + 8, SCAN_NEEDLES) == want and anchors(data, 1, want[0] + 5, SCAN_NEEDLES) == []


def test_libc_and_python_search_agree_on_every_fixture(monkeypatch):
    if oom_scan.MEMMEM is None:
        pytest.skip('the C library has no memmem(3) reachable through ctypes here')
    data = b''.join(open(p, 'rb').read() for p in sorted(glob.glob(os.path.join(FIXTURES, '*.log'))))
    start, end = 3, len(data) - 5
    fast = _hit_lines(data, anchors(data, start, end, SCAN_NEEDLES))
    assert sorted(fast) == _needle_lines(data, start, end) and len(fast) > 500
    monkeypatch.setattr(oom_scan, 'STRSTR', None)
    assert _hit_lines(data, anchors(data, start, end, SCAN_NEEDLES)) == fast
    monkeypatch.setattr(oom_scan, 'MEMMEM', None)
    assert sorted(_hit_lines(data, anchors(data, start, end, SCAN_NEEDLES))) == sorted(fast)


def test_large_chunks_keep_line_numbers_and_agree_with_lines():
    """Chunks above the small-count limit take the copy-free and the sliced newline counts."""
    rows, expected = [], []
    for i in range(4000):
        rows.append('Nov 14 22:00:%02d h kernel: [%6d.000000] %s' % (i % 60, i, NEAR_MISSES[i % len(NEAR_MISSES)]))
        if i % 450 == 7:
            expected.append(len(rows) + 1)
            rows.append('Nov 14 22:00:00 h kernel: [ 1.0] app invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, '
                        'oom_score_adj=0')
            rows.append('Nov 14 22:00:00 h kernel: [ 1.0] Tasks state (memory values in pages):')
            rows.append('Nov 14 22:00:00 h kernel: [ 1.0] Out of memory: Killed process %d (app) total-vm:1kB, '
                        'anon-rss:1kB, file-rss:0kB' % (100 + i))
        elif i % 450 == 200:
            # rate-limited: only the kill line
            expected.append(len(rows) + 1)
            rows.append('Nov 14 22:00:00 h kernel: [ 1.0] Killed process %d (db) total-vm:1kB, anon-rss:1kB, '
                        'file-rss:0kB' % (100 + i))
        elif i % 450 == 330:
            expected.append(len(rows) + 1)
            rows.append('Nov 14 22:00:00 h kernel: [ 1.0] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),'
                        'task=x,pid=%d,uid=0' % (100 + i))
    data = ('\n'.join(rows) + '\n').encode('ascii')
    assert len(data) > 5 * 65536
    whole = list(parse_lines(data.decode('ascii').split('\n')[:-1], 'x'))
    assert [int(e['source'][2:]) for e in whole] == expected
    for chunk in (4096, 5000, 65536, 1 << 20):
        stats = {}
        assert list(parse_stream(io.BytesIO(data), 'x', chunk_size=chunk, stats=stats)) == whole
        assert stats['lines'] == len(rows)


def test_selection_line_at_the_end_of_a_chunk():
    noise = b'Nov 14 22:00:00 h kernel: [ 1.0] noise\n' * 3
    selection = b'Nov 14 22:00:00 h kernel: [ 1.0] Out of memory: Kill process 7 (db) score 9 or sacrifice child\n'
    kill = b'Nov 14 22:00:00 h kernel: [ 1.0] Killed process 7 (db) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n'
    data = noise + selection + kill + noise
    whole = list(parse_lines(data.decode('ascii').split('\n')[:-1], 'x'))
    assert [e['source'] for e in whole] == ['x:4']
    assert list(parse_stream(io.BytesIO(data), 'x', chunk_size=len(noise + selection))) == whole
    # wherever the chunk boundary falls: inside the selection line, between it and the kill line, ...
    for size in range(1, len(data) + 2):
        assert list(parse_stream(io.BytesIO(data), 'x', chunk_size=size)) == whole, size
