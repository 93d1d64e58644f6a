# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel's text wherever it is: every prefix kind, damaged text, and the event semantics.

Each case is one real kernel line shape (from mm/oom_kill.c and mm/memcontrol.c of the kernel
versions named) under the prefix or the damage a transport adds; expected values are written out.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import io

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import oom_log
from ansible_collections.oomguard.memory.plugins.module_utils.oom_log import format_event

KILL = ('Memory cgroup out of memory: Killed process 2501 (java) total-vm:4096kB, anon-rss:2048kB, file-rss:8kB, '
        'shmem-rss:0kB, UID:1000 pgtables:64kB oom_score_adj:300')
HEAD = 'java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=300'


pytestmark = pytest.mark.usefixtures('utc')


def parse(text, **kw):
    """Event facts through both entry points, which must agree."""
    lines = text.strip('\n').split('\n')
    events = [format_event(e, 't') for e in oom_log.parse_lines(lines, **kw)]
    data = (text.strip('\n') + '\n').encode('utf-8')
    assert [format_event(e, 't') for e in oom_log.parse_stream(io.BytesIO(data), **kw)] == events
    return events


def one(text, **kw):
    events = parse(text, **kw)
    assert len(events) == 1, events
    return events[0]


def kill_fields(ev):
    v = ev['victim']
    return (v['pid'], v['name'], v['uid'], v['anon_rss_kb'], v['oom_score_adj'], ev['kind'])


WANT = (2501, 'java', 1000, 2048, 300, 'memcg')


# --- prefixes: the kernel's text is found wherever the line puts it ------------------------------

@pytest.mark.parametrize('prefix, time_, host', [
    ('Sep 10 12:00:00 db1 kernel: ', '2024-09-10T12:00:00Z', 'db1'),
    ('Sep 10 12:00:00 db1 kernel:', '2024-09-10T12:00:00Z', 'db1'),                  # no space after the colon
    ('Sep 10 12:00:00 db1 kernel: [ 8811.001234] ', '2024-09-10T12:00:00Z', 'db1'),
    ('2024-09-10T14:00:00.123456+02:00 db1 kernel: ', '2024-09-10T12:00:00.123456Z', 'db1'),  # RFC 3339
    ('<4>1 2024-09-10T12:00:00.5Z db1 kernel - - - ', '2024-09-10T12:00:00.500000Z', 'db1'),  # RFC 5424
    ('2024-09-10T12:00:00+0000 db1 kernel: ', '2024-09-10T12:00:00Z', 'db1'),               # -o short-iso
    ('[ 8811.001234] db1 kernel: ', None, None),                                             # -o short-monotonic
    ('Tue 2024-09-10 12:00:00 UTC db1 kernel: ', '2024-09-10T12:00:00Z', 'db1'),           # -o short-full
    ('1725969600.250000 db1 kernel: ', '2024-09-10T12:00:00.250000Z', 'db1'),              # -o short-unix
    ('2024-09-10T14:00:00,250000+02:00 ', '2024-09-10T12:00:00.250000Z', None),            # dmesg --time-format iso
    ('<4>Sep 10 12:00:00 db1 kernel: ', '2024-09-10T12:00:00Z', 'db1'),                    # RFC 3164 with priority
    ('sept. 10 12:00:00 db1 kernel: ', '2024-09-10T12:00:00Z', 'db1'),                     # French journal
    ('Okt 10 12:00:00 db1 kernel: ', '2024-10-10T12:00:00Z', 'db1'),                       # German journal
    ('апр 28 01:23:30 db1 kernel: ', '2024-04-28T01:23:30Z', 'db1'),                       # Russian journal
    ('paź 10 12:00:00 db1 kernel: ', '2024-10-10T12:00:00Z', 'db1'),                       # Polish journal
    ('    MESSAGE=', None, None),                                                             # -o verbose
    ('[Tue Sep 10 12:00:00 2024] ', '2024-09-10T12:00:00Z', None),                           # dmesg -T
    ('kern  :err   : [ 8811.001234] ', None, None),                                          # dmesg -x
    ('Tue Sep 10 12:00:00 2024 kern.warn kernel: [ 8811.001234] ', '2024-09-10T12:00:00Z', None),  # logread
    ('2024-09-10T12:00:00.000Z| vcpu-0| I125: Guest: ', '2024-09-10T12:00:00.000000Z', None),      # hypervisor log
    ('db1 login: [ 8811.001234] ', None, None),                                              # serial console
    ('   412\t', None, None),                                                                # cat -n
    ('Sep 10 12:00:00 node7 containerd[88]: Sep 10 12:00:00 db1 kernel: ', '2024-09-10T12:00:00Z', None),
    ('I0910 12:00:00.000000  1234 oom_watcher.go:68] kernel: ', None, None),                # kubelet quoting
    ('>> > ', None, None),                                                                    # nested mail quoting
])
def test_any_prefix_before_the_kill_line(prefix, time_, host):
    ev = one(prefix + KILL, year=2024)
    assert kill_fields(ev) == WANT
    if time_ is not None:
        assert ev['time'] == time_
    if host is not None:
        assert ev['host'] == host


def test_any_prefix_before_the_header_keeps_the_trigger_name_whole():
    for prefix in ('Sep 10 12:00:00 db1 kernel: ', '2024-09-10T12:00:00.000Z| vcpu-0| I125: ', 'db1 login: [ 1.5] ',
                   '[Tue Sep 10 12:00:00 2024] ', '   412\t', 'kern  :warn  : [    1.500000] '):
        ev = one(prefix + 'Web Content invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|'
                 '__GFP_ZERO), order=0, oom_score_adj=0\n' + prefix + 'CPU: 2 PID: 7001 Comm: Web Content Not tainted')
        assert ev['trigger']['name'] == 'Web Content' and ev['trigger']['pid'] == 7001, prefix


def test_localised_journal_header_lines_are_noise():
    ev = one('-- Journal beginnt am Tue 2024-09-10 00:00:00 UTC. --\n'
             '-- Boot 0123456789abcdef0123456789abcdef --\n'
             'Sep 10 12:00:00 db1 kernel: ' + KILL, year=2024)
    assert kill_fields(ev) == WANT


# journalctl -o verbose, as systemd's journalctl prints one entry (src/shared/logs-show.c,
# output_verbose: the header line "<weekday> <date> <time>.<usec> <zone> [s=...;i=...;b=...;m=...;t=...;x=...]",
# then the fields indented by four spaces); the values below are made up.
VERBOSE = '\n'.join([
    'Tue 2024-09-10 12:00:00.250000 UTC [s=4f8b2c1d9e7a4b6c8d0e1f2a3b4c5d6e;i=1a2b;'
    'b=0123456789abcdef0123456789abcdef;m=20d1f3a2b;t=621c5a1b2c3d4;x=9a8b7c6d5e4f3a2b]',
    '    _BOOT_ID=0123456789abcdef0123456789abcdef',
    '    _MACHINE_ID=fedcba9876543210fedcba9876543210',
    '    _HOSTNAME=db1',
    '    PRIORITY=3',
    '    SYSLOG_FACILITY=0',
    '    SYSLOG_IDENTIFIER=kernel',
    '    _TRANSPORT=kernel',
    '    _SOURCE_MONOTONIC_TIMESTAMP=8811001234',
    '    MESSAGE=%s',
    ''])


def test_journalctl_verbose_entry_time_is_the_header_time():
    noise = VERBOSE.replace('12:00:00.250000', '11:00:00.000000').replace('MESSAGE=%s', 'MESSAGE=e1000e: eth0 NIC Link is Up')
    ev = one(noise + VERBOSE % KILL)
    assert kill_fields(ev) == WANT and ev['time'] == '2024-09-10T12:00:00.250000Z' and ev['source'] == 't:20'


def test_journalctl_verbose_report_lines_each_with_a_header():
    ev = one(VERBOSE % HEAD + VERBOSE.replace('12:00:00.25', '12:00:00.26') % KILL)
    assert ev['time'] == '2024-09-10T12:00:00.250000Z' and kill_fields(ev) == WANT and ev['trigger']['name'] == 'java'


def test_node_problem_detector_json_event_on_one_line():
    line = ('{"reason":"OOMKilling","message":"%s","source":{"component":"kernel-monitor"},'
            '"firstTimestamp":"2024-09-10T12:00:00Z"}' % KILL)
    assert kill_fields(one(line)) == WANT


def test_another_program_quoting_without_a_kernel_prefix_is_not_a_kill():
    # earlyoom and friends print look-alike lines of their own
    assert parse('Sep 10 12:00:00 h earlyoom[12]: Killed process 77 (x) total-vm:1kB, anon-rss:1kB', year=2024) == []
    assert parse('déc. 10 12:00:00 h earlyoom[12]: Killed process 77 (x) total-vm:1kB, anon-rss:1kB') == []


# --- damaged text ------------------------------------------------------------------------------------

def test_mail_wrapped_kill_line_in_a_prefixed_log():
    text = ('Sep 10 12:00:00 db1 kernel: Memory cgroup out of memory: Killed process 2501 (java)\n'
            'total-vm:4096kB, anon-rss:2048kB, file-rss:8kB, shmem-rss:0kB, UID:1000\n'
            'pgtables:64kB oom_score_adj:300\n'
            'Sep 10 12:00:01 db1 kernel: e1000e: eth0 NIC Link is Up')
    assert kill_fields(one(text, year=2024)) == WANT


def test_mail_wrapped_right_after_killed():
    text = ('> Sep 10 12:00:00 db1 kernel: [ 8811.001234] Memory cgroup out of memory: Killed\n'
            '> process 2501 (java) total-vm:4096kB, anon-rss:2048kB, file-rss:8kB, shmem-rss:0kB,\n'
            '> UID:1000 pgtables:64kB oom_score_adj:300\n')
    assert kill_fields(one(text, year=2024)) == WANT


def test_terminal_wrapped_at_80_columns_mid_number():
    line = '[ 8811.001234] ' + KILL
    text = '\n'.join(line[i:i + 80] for i in range(0, len(line), 80))
    assert len(text.split('\n', maxsplit=1)[0]) == 80
    assert kill_fields(one(text)) == WANT


def test_wrapped_header_in_a_bare_log():
    ev = one('java invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE),\n'
             '    order=0, oom_score_adj=300\n'
             'CPU: 1 PID: 99 Comm: java Not tainted 6.1.0-13-amd64 #1 Debian 6.1.55-1')
    assert ev['trigger'] == {'name': 'java', 'pid': 99, 'gfp_mask': '0x100cca', 'order': 0, 'oom_score_adj': 300}


def test_indented_quoting_of_a_whole_report():
    text = '\n'.join('        [  12.5] ' + l for l in (
        HEAD, 'CPU: 1 PID: 99 Comm: java Not tainted 6.1.0', KILL,
        'oom_reaper: reaped process 2501 (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB'))
    ev = one(text)
    assert kill_fields(ev) == WANT and ev['trigger']['pid'] == 99 and ev['reaped'] is True


def test_summary_line_split_by_another_cpus_message():
    # oom-kill: is built from pr_cont() pieces; another CPU's printk can land between them
    ev = one('[ 5.0] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0\n'
             '[ 5.0] e1000e: eth0 NIC Link is Up\n'
             '[ 5.0] ,oom_memcg=/app,task_memcg=/app/w1,task=java,pid=2501,uid=1000\n'
             '[ 5.0] Killed process 2501 (java) total-vm:4096kB, anon-rss:2048kB, file-rss:8kB, shmem-rss:0kB')
    assert (ev['oom_memcg'], ev['task_memcg'], ev['victim']['uid'], ev['kind']) == ('/app', '/app/w1', 1000, 'memcg')


def test_two_messages_in_one_line_keep_the_fields_they_still_hold():
    ev = one('[ 5.0] Out of memory: Killed process 2501 (java) total-vm:4096kB, [ 5.0] usb 1-1: reset '
             'anon-rss:2048kB, file-rss:8kB')
    assert ev['victim']['total_vm_kb'] == 4096 and ev['victim']['anon_rss_kb'] == 2048


def test_two_kill_lines_run_together_are_two_kills_with_their_own_fields():
    events = parse('Killed process 1 (a) total-vm:10kB, anon-rss:Killed process 2 (b) total-vm:20kB, anon-rss:5kB')
    assert [(e['victim']['pid'], e['victim']['total_vm_kb'], e['victim']['anon_rss_kb']) for e in events] == [
        (1, 10, None), (2, 20, 5)]


def test_header_without_kill_and_kill_without_header_are_not_merged_or_split():
    events = parse('[ 1.0] ' + HEAD + '\n[ 9.0] ' + HEAD + '\n[ 9.1] ' + KILL)
    assert [(e['trigger'] is not None, e['victim'] is not None) for e in events] == [(True, False), (True, True)]


# --- event semantics -------------------------------------------------------------------------------

@pytest.mark.parametrize('constraint, kind', [
    ('CONSTRAINT_NONE', 'global'), ('CONSTRAINT_MEMCG', 'memcg'), ('CONSTRAINT_CPUSET', 'cpuset'),
    ('CONSTRAINT_MEMORY_POLICY', 'mempolicy'),
])
def test_kind_follows_the_constraint(constraint, kind):
    ev = one('oom-kill:constraint=%s,nodemask=0,cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=a,pid=5,uid=7\n'
             'Out of memory: Killed process 5 (a) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB' % constraint)
    assert (ev['constraint'], ev['kind'], ev['victim']['uid'], ev['task_memcg']) == (constraint, kind, 7, '/')


def test_names_with_spaces_brackets_colons_and_padding():
    ev = one('runc:[2:INIT] invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=-998\n'
             'Memory cgroup out of memory: Killed process 9 (Web Content ) total-vm:1kB, anon-rss:1kB, file-rss:0kB')
    assert ev['trigger']['name'] == 'runc:[2:INIT]' and ev['victim']['name'] == 'Web Content'
    ev = one('Killed process 9 ((sd-pam)) total-vm:1kB, anon-rss:1kB, file-rss:0kB')
    assert ev['victim']['name'] == '(sd-pam)'


def test_oom_reaper_unable_to_reap():
    ev = one(KILL + '\noom_reaper: unable to reap pid:2501 (java)')
    assert ev['reaped'] is False and ev['victim']['reaped'] is False
    ev = one(KILL + '\nsome other line\noom_reaper: reaped process 2501 (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB')
    assert ev['reaped'] is True


def test_group_kill_is_one_event_with_every_victim_once():
    kill = 'Memory cgroup out of memory: Killed process %d (w) total-vm:1kB, anon-rss:%dkB, file-rss:0kB'
    text = '\n'.join([HEAD, kill % (10, 1), 'Tasks in /app are going to be killed due to memory.oom.group set',
                      kill % (11, 2), kill % (10, 1),
                      'Memory cgroup out of memory: OOM victim 12 (w) is already exiting. Skip killing the task',
                      kill % (13, 3)])
    ev = one(text)
    assert [v['pid'] for v in ev['victims']] == [10, 11, 13] and ev['victim']['pid'] == 10
    assert ev['exiting'] is None


def test_already_exiting_without_a_header_is_an_event_without_a_kill():
    ev = one('[ 3.0] Memory cgroup out of memory: OOM victim 8 (a) is already exiting. Skip killing the task')
    assert ev['victim'] is None and ev['exiting'] == {'pid': 8, 'name': 'a'} and ev['kind'] == 'memcg'


def test_no_killable_memcg_without_panic_and_global_with_panic():
    events = parse('a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n'
                   'memory: usage 1024kB, limit 1024kB, failcnt 9\n'
                   'Out of memory and no killable processes...\n'
                   'b invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0\n'
                   'Mem-Info:\n'
                   'Out of memory and no killable processes...\n'
                   'Kernel panic - not syncing: System is deadlocked on memory')
    assert [(e['kind'], e['no_killable'], e['panic'], e['victim']) for e in events] == [
        ('memcg', True, False, None), ('global', True, True, None)]


def test_a_selected_parent_and_a_killed_child_are_one_event():
    ev = one('[ 1.0] Out of memory: Kill process 10 (parent) score 900 or sacrifice child\n'
             '[ 1.0] Killed process 11 (child) total-vm:1kB, anon-rss:1kB, file-rss:0kB')
    assert ev['victim']['pid'] == 11 and len(ev['victims']) == 1


def test_journal_record_carries_its_boot():
    line = ('{"MESSAGE":"%s","_TRANSPORT":"kernel","__REALTIME_TIMESTAMP":"1700000000000000",'
            '"_BOOT_ID":"0123456789abcdef0123456789abcdef","_SOURCE_MONOTONIC_TIMESTAMP":"5000000"}' % KILL)
    ev = one(line)
    assert ev['boot'] == '0123456789abcdef0123456789abcdef' and ev['uptime'] == 5.0
    assert ev['time'] == '2023-11-14T22:13:20.000000Z'


def test_values_before_formatting_are_epoch_and_line_numbers():
    (value,) = list(oom_log.parse_lines(['noise', '[ 2.5] ' + KILL], boot_time=1000))
    assert value['epoch'] == 1002.5 and value['line'] == 2 and 'time' not in value and 'source' not in value


def test_empty_lines_inside_an_open_report_are_no_crash():
    # A pasted report with blank lines between its parts (mail, forums): an empty line used to
    # raise AttributeError in the quote handling while a report was open.
    text = ('[ 100.000001] ' + HEAD + '\n'
            '\n'
            '[ 100.000002] Mem-Info:\n'
            '\n'
            '[ 100.000003] Out of memory: Killed process 2501 (java) total-vm:4096kB, anon-rss:2048kB, '
            'file-rss:8kB, shmem-rss:0kB, UID:1000 pgtables:64kB oom_score_adj:300\n'
            '\n')
    event = one(text)
    assert event['victim']['pid'] == 2501 and event['trigger']['name'] == 'java'
