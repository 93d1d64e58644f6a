"""oom_score_adj's planning, check/diff mode, idempotence, validation and drop-ins, against a fake
/proc and /etc tree (the real kernel is in tests/integration/test_oom_score_adj.py).

The fake tree stands in for what the unit tests cannot do for real: writing other people's
processes, a host with CAP_SYS_RESOURCE, systemd as PID 1."""
import os

import pytest
from ansible.module_utils import basic

from ansible_collections.oomguard.memory.plugins.module_utils import processes as procs
from ansible_collections.oomguard.memory.plugins.module_utils import systemd
from ansible_collections.oomguard.memory.plugins.modules import oom_score_adj
from faketree import write

PF_KTHREAD = 0x00200000
DROPIN = 'etc/systemd/system/app.service.d/50-oomguard-oom-score-adj.conf'


def add_process(root, pid, comm, ppid, argv=(), kernel=False, adj=0, cgroup='/user.slice'):
    fields = ['S', str(ppid), str(pid), str(pid), '0', '-1', str(PF_KTHREAD if kernel else 0)] + ['0'] * 15
    write(root, '/proc/%d/stat' % pid, '%d (%s) %s\n' % (pid, comm, ' '.join(fields)))
    write(root, '/proc/%d/cmdline' % pid, '\0'.join(argv) + '\0' if argv else '')
    write(root, '/proc/%d/oom_score_adj' % pid, '%d\n' % adj)
    write(root, '/proc/%d/cgroup' % pid, '' if kernel else '1:name=systemd:%s\n0::%s\n' % (cgroup, cgroup))


class Tree(object):
    def __init__(self, root):
        self.root = str(root)

    def adj(self, pid):
        with open(os.path.join(self.root, 'proc/%d/oom_score_adj' % pid)) as handle:
            return int(handle.read())

    def set_cap(self, present):
        write(self.root, '/proc/self/status', 'CapEff:\t%s\n' % ('000001ffffffffff' if present else '000001fffeffffff'))

    def dropin(self):
        path = os.path.join(self.root, DROPIN)
        return open(path).read() if os.path.exists(path) else None


@pytest.fixture
def tree(tmp_path, monkeypatch):
    add_process(tmp_path, 1, 'systemd', 0, ['/sbin/init'], cgroup='/init.scope')
    add_process(tmp_path, 2, 'kthreadd', 0, kernel=True)
    add_process(tmp_path, 9, 'kworker/0:0', 2, kernel=True)
    add_process(tmp_path, 100, 'batch', 1, ['/usr/bin/batch', '--nightly'])
    add_process(tmp_path, 101, 'batch-worker', 100, ['/usr/bin/batch', '--worker'])
    add_process(tmp_path, 102, 'sh', 101, ['sh', '-c', 'x'])
    add_process(tmp_path, 200, 'app', 1, ['/usr/bin/app'], cgroup='/system.slice/app.service')
    add_process(tmp_path, 201, 'app-child', 200, ['/usr/bin/app', '--child'], cgroup='/system.slice/app.service')
    add_process(tmp_path, 202, 'session', 200, ['/usr/bin/app', '--session'], cgroup='/user.slice/session-1.scope')
    add_process(tmp_path, 300, 'other', 1, ['/usr/bin/other'], adj=250)
    os.makedirs(str(tmp_path / 'run/systemd/system'))
    t = Tree(tmp_path)
    t.set_cap(False)
    monkeypatch.setattr(oom_score_adj, 'ROOT', t.root)
    t.reloads = []
    t.units = {'app.service': {'LoadState': 'loaded', 'MainPID': '200', 'ControlGroup': '/system.slice/app.service'},
               'idle.service': {'LoadState': 'loaded', 'MainPID': '0', 'ControlGroup': ''}}
    monkeypatch.setattr(systemd, 'show', lambda module, unit, props: t.units.get(unit, {'LoadState': 'not-found'}))
    monkeypatch.setattr(systemd, 'daemon_reload', lambda module: t.reloads.append(1) or True)
    WARNINGS[:] = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda module, text: WARNINGS.append(text))
    return t


WARNINGS = []


def warnings():
    return list(WARNINGS)


def test_pid_with_children_sets_the_subtree_and_reads_back(tree, run_module):
    result = run_module(oom_score_adj, {'pid': [100], 'value': 500})
    assert result['changed'] is True
    assert result['processes'] == [{'pid': 100, 'name': 'batch', 'before': 0, 'after': 500},
                                   {'pid': 101, 'name': 'batch-worker', 'before': 0, 'after': 500},
                                   {'pid': 102, 'name': 'sh', 'before': 0, 'after': 500}]
    assert [tree.adj(p) for p in (100, 101, 102, 300)] == [500, 500, 500, 250]
    assert result['dropin'] is None and result['daemon_reload'] is False
    assert any('lost when the process exits' in w for w in warnings())


def test_second_run_is_unchanged(tree, run_module):
    run_module(oom_score_adj, {'pid': 100, 'value': 500})
    assert run_module(oom_score_adj, {'pid': 100, 'value': 500})['changed'] is False


def test_children_false_sets_only_the_match(tree, run_module):
    result = run_module(oom_score_adj, {'pid': 100, 'value': 500, 'children': False, 'persist': False})
    assert [p['pid'] for p in result['processes']] == [100]
    assert [tree.adj(p) for p in (100, 101)] == [500, 0]
    assert not any('lost when the process exits' in w for w in warnings())


def test_check_mode_predicts_and_writes_nothing(tree, run_module):
    result = run_module(oom_score_adj, {'pid': 100, 'value': 500, '_ansible_check_mode': True})
    assert result['changed'] is True and [p['after'] for p in result['processes']] == [500, 500, 500]
    assert [tree.adj(p) for p in (100, 101, 102)] == [0, 0, 0]


def test_diff_shows_each_process(tree, run_module):
    result = run_module(oom_score_adj, {'pid': 100, 'value': 500, 'children': False, '_ansible_diff': True})
    assert result['diff'] == [{'before_header': 'oom_score_adj', 'after_header': 'oom_score_adj',
                               'before': '/proc/100/oom_score_adj (batch): 0\n',
                               'after': '/proc/100/oom_score_adj (batch): 500\n'}]


def test_process_comm_vs_cmdline(tree, run_module):
    by_comm = run_module(oom_score_adj, {'process': '^batch', 'value': 300, 'children': False,
                                         '_ansible_check_mode': True})
    assert [p['pid'] for p in by_comm['processes']] == [100, 101]
    by_cmdline = run_module(oom_score_adj, {'process': '--worker$', 'match': 'cmdline', 'value': 300,
                                            'children': False, '_ansible_check_mode': True})
    assert [p['pid'] for p in by_cmdline['processes']] == [101]


def test_pattern_never_reaches_kernel_threads_or_pid1(tree, run_module):
    result = run_module(oom_score_adj, {'process': '.', 'allow_many': True, 'value': 300, '_ansible_check_mode': True})
    assert sorted(p['pid'] for p in result['processes']) == [100, 101, 102, 200, 201, 202, 300]


def test_pid1_when_named(tree, run_module):
    result = run_module(oom_score_adj, {'pid': 1, 'value': 100})
    assert [p['pid'] for p in result['processes']] == [1] and tree.adj(1) == 100 and tree.adj(100) == 0


def test_pidfile(tree, run_module, tmp_path):
    pidfile = write(tmp_path, 'x.pid', '200\n')
    result = run_module(oom_score_adj, {'pidfile': pidfile, 'value': 50, 'children': False})
    assert result['changed'] is True and tree.adj(200) == 50


def test_lowering_below_zero_without_the_capability_fails_and_changes_nothing(tree, run_module):
    # 100 would be raised (allowed) but 300 would be lowered from 250: all or nothing
    result = run_module(oom_score_adj, {'pid': [100, 300], 'value': -100, 'children': False})
    assert result['failed'] is True
    assert result['msg'].startswith('cannot lower oom_score_adj to -100 for pid 100 (batch, now 0), '
                                    '300 (other, now 250): going below 0 needs CAP_SYS_RESOURCE')
    assert 'nothing was changed' in result['msg'] and 'OOMScoreAdjust=' in result['msg']
    assert tree.adj(100) == 0 and tree.adj(300) == 250


def test_lowering_check_mode_fails_the_same(tree, run_module):
    result = run_module(oom_score_adj, {'pid': 300, 'value': -900, '_ansible_check_mode': True})
    assert result['failed'] is True and 'CAP_SYS_RESOURCE' in result['msg']


def test_lowering_towards_zero_needs_no_capability(tree, run_module):
    result = run_module(oom_score_adj, {'pid': 300, 'value': 10})
    assert result['changed'] is True and tree.adj(300) == 10


def test_lowering_with_the_capability(tree, run_module):
    tree.set_cap(True)
    result = run_module(oom_score_adj, {'pid': 300, 'value': -900})
    assert result['changed'] is True and tree.adj(300) == -900


def test_unpredicted_refusal_puts_back_what_was_changed(tree, run_module, monkeypatch):
    """A process whose floor a privileged writer moved refuses a write we predicted to work."""
    real = procs.write_oom_score_adj

    def refuse_101(pid, value, root='/'):
        if pid == 101 and value == 5:
            raise procs.AdjustDenied('/proc/101/oom_score_adj: the kernel refused 5 (Permission denied)')
        return real(pid, value, root)
    monkeypatch.setattr(procs, 'write_oom_score_adj', refuse_101)
    write(tree.root, '/proc/100/oom_score_adj', '40\n')
    write(tree.root, '/proc/101/oom_score_adj', '40\n')
    result = run_module(oom_score_adj, {'pid': 100, 'value': 5})
    assert result['failed'] is True and 'the kernel refused 5' in result['msg']
    assert [tree.adj(p) for p in (100, 101, 102)] == [40, 40, 0]


def test_process_exiting_before_the_write_is_skipped(tree, run_module, monkeypatch):
    real = procs.write_oom_score_adj

    def gone_101(pid, value, root='/'):
        if pid == 101:
            raise procs.ProcessGone('/proc/101/oom_score_adj: process is gone')
        return real(pid, value, root)
    monkeypatch.setattr(procs, 'write_oom_score_adj', gone_101)
    result = run_module(oom_score_adj, {'pid': 100, 'value': 500})
    assert 'failed' not in result and [p['pid'] for p in result['processes']] == [100, 102]


def test_absent_puts_our_value_back_to_zero_only(tree, run_module):
    run_module(oom_score_adj, {'pid': 100, 'value': 250, 'children': False})
    result = run_module(oom_score_adj, {'process': '.', 'allow_many': True, 'value': 250, 'state': 'absent'})
    changed = [(p['pid'], p['before'], p['after']) for p in result['processes'] if p['before'] != p['after']]
    assert changed == [(100, 250, 0), (300, 250, 0)]
    assert tree.adj(100) == 0 and tree.adj(300) == 0
    assert run_module(oom_score_adj, {'process': '.', 'allow_many': True, 'value': 250, 'state': 'absent'})['changed'] is False


def test_missing_ignore_warns_and_fail_fails(tree, run_module):
    result = run_module(oom_score_adj, {'process': '^nothing-like-this$', 'value': 5})
    assert result['changed'] is False and result['processes'] == []
    assert any("no running process matches process '^nothing-like-this$' (comm)" in w for w in warnings())
    result = run_module(oom_score_adj, {'process': '^nothing-like-this$', 'value': 5, 'missing': 'fail'})
    assert result['failed'] is True and result['msg'].startswith('no running process matches')
    result = run_module(oom_score_adj, {'pid': [100, 4242], 'value': 5, 'missing': 'fail'})
    assert result['failed'] is True and result['msg'] == 'pid 4242: no such process (missing: fail)'
    assert tree.adj(100) == 0


@pytest.mark.parametrize('args, words', [
    ({'pid': 100, 'value': 1001}, 'value: 1001 is out of range; oom_score_adj goes from -1000'),
    ({'pid': 100, 'value': -1001}, 'value: -1001 is out of range'),
    ({'pid': 100, 'process': 'x', 'value': 1}, 'mutually exclusive: pid|pidfile|process|unit'),
    ({'value': 1}, 'one of the following is required: pid, pidfile, process, unit'),
    ({'process': 'batch(', 'value': 1}, "process: 'batch(' is not a valid regular expression"),
    ({'process': '', 'value': 1}, 'the pattern is empty'),
    ({'pid': 0, 'value': 1}, 'pid: 0 is not a process id'),
    ({'pid': [], 'value': 1}, 'pid: the list is empty'),
    ({'pid': 9, 'value': 1}, 'pid 9 (kworker/0:0) is a kernel thread'),
    ({'pid': 100, 'value': 1, 'live': False}, 'live: false with a pid, pidfile or process target leaves nothing'),
    ({'pidfile': '/nonexistent/x.pid', 'value': 1}, 'pidfile: cannot read /nonexistent/x.pid'),
    ({'unit': 'bad/unit', 'value': 1}, "'bad/unit.service' is not a valid systemd unit name"),
    ({'unit': 'x.timer', 'value': 1}, 'is a .timer unit'),
    ({'unit': 'nope.service', 'value': 1}, 'systemd knows no unit nope.service (LoadState=not-found)'),
])
def test_bad_input_is_one_sentence_and_changes_nothing(tree, run_module, args, words):
    result = run_module(oom_score_adj, args)
    assert result['failed'] is True and words in result['msg'], result['msg']
    assert 'Traceback' not in result['msg']
    assert [tree.adj(p) for p in (1, 100, 101, 200)] == [0, 0, 0, 0] and tree.dropin() is None


def test_pidfile_naming_pid1_is_refused(tree, run_module, tmp_path):
    result = run_module(oom_score_adj, {'pidfile': write(tmp_path, 'one.pid', '1\n'), 'value': 5})
    assert result['failed'] is True and 'names PID 1; ask for it with pid: 1' in result['msg']


# ---- unit targets (systemd and its daemon-reload faked; real ones in the container testbed)

DROPIN_TEXT = ('# Managed by Ansible (oomguard.memory.oom_score_adj); edits here are overwritten.\n'
               '[Service]\nOOMScoreAdjust=%d\n')


def test_unit_writes_dropin_reloads_and_sets_the_cgroup(tree, run_module):
    result = run_module(oom_score_adj, {'unit': 'app', 'value': 300})
    assert result['changed'] is True and result['daemon_reload'] is True
    assert result['dropin'] == os.path.join(tree.root, DROPIN)
    assert tree.dropin() == DROPIN_TEXT % 300 and tree.reloads == [1]
    assert [p['pid'] for p in result['processes']] == [200, 201] and tree.adj(200) == tree.adj(201) == 300
    # 202 descends from the unit's main process but lives in a session scope: not the unit's
    assert tree.adj(202) == 0
    again = run_module(oom_score_adj, {'unit': 'app', 'value': 300})
    assert again['changed'] is False and again['daemon_reload'] is False and tree.reloads == [1]


def test_unit_without_children_is_its_main_process(tree, run_module):
    result = run_module(oom_score_adj, {'unit': 'app', 'value': 300, 'children': False})
    assert [p['pid'] for p in result['processes']] == [200] and tree.adj(201) == 0


def test_unit_check_and_diff(tree, run_module):
    result = run_module(oom_score_adj, {'unit': 'app.service', 'value': 300, 'live': False,
                                        '_ansible_check_mode': True, '_ansible_diff': True})
    assert result['changed'] is True and result['daemon_reload'] is True and result['processes'] == []
    assert result['diff'] == [{'before_header': result['dropin'], 'after_header': result['dropin'],
                               'before': '', 'after': DROPIN_TEXT % 300}]
    assert tree.dropin() is None and tree.reloads == []


def test_unit_value_change_rewrites_the_dropin(tree, run_module):
    run_module(oom_score_adj, {'unit': 'app', 'value': 300, 'live': False})
    result = run_module(oom_score_adj, {'unit': 'app', 'value': 400, 'live': False, '_ansible_diff': True})
    assert result['changed'] is True and tree.dropin() == DROPIN_TEXT % 400 and len(tree.reloads) == 2
    assert result['diff'][0]['before'] == DROPIN_TEXT % 300


def test_unit_lowering_without_capability_points_to_live_false(tree, run_module):
    result = run_module(oom_score_adj, {'unit': 'app', 'value': -900})
    assert result['failed'] is True and 'write only the drop-in with live: false and restart app.service' in result['msg']
    assert tree.dropin() is None and tree.reloads == []
    result = run_module(oom_score_adj, {'unit': 'app', 'value': -900, 'live': False})
    assert result['changed'] is True and tree.dropin() == DROPIN_TEXT % -900 and tree.adj(200) == 0


def test_unit_not_running_still_gets_its_dropin(tree, run_module):
    result = run_module(oom_score_adj, {'unit': 'idle', 'value': 300})
    assert result['changed'] is True and result['processes'] == []
    assert os.path.exists(os.path.join(tree.root, 'etc/systemd/system/idle.service.d/50-oomguard-oom-score-adj.conf'))
    assert any('no running process matches unit idle.service; the drop-in applies when the unit starts' in w
               for w in warnings())
    failed = run_module(oom_score_adj, {'unit': 'app2', 'value': 300, 'missing': 'fail'})
    assert failed['failed'] is True


def test_unit_absent_removes_the_dropin_and_our_value(tree, run_module):
    run_module(oom_score_adj, {'unit': 'app', 'value': 300})
    result = run_module(oom_score_adj, {'unit': 'app', 'value': 300, 'state': 'absent'})
    assert result['changed'] is True and result['daemon_reload'] is True
    assert tree.dropin() is None and not os.path.exists(os.path.dirname(os.path.join(tree.root, DROPIN)))
    assert tree.adj(200) == 0 and len(tree.reloads) == 2
    assert run_module(oom_score_adj, {'unit': 'app', 'value': 300, 'state': 'absent'})['changed'] is False


def test_unit_on_a_host_without_systemd(tree, run_module):
    os.rmdir(os.path.join(tree.root, 'run/systemd/system'))
    result = run_module(oom_score_adj, {'unit': 'app', 'value': 300})
    assert result['failed'] is True and 'needs systemd as PID 1' in result['msg']


# ---- issue 15: hostile input


def test_pidfile_fifo_is_refused_without_waiting(tree, run_module, tmp_path, no_hang):
    fifo = str(tmp_path / 'app.pid')
    os.mkfifo(fifo)
    result = run_module(oom_score_adj, {'pidfile': fifo, 'value': 500})
    assert result['failed'] is True
    assert result['msg'] == 'pidfile: cannot read %s: it is a FIFO (named pipe), not a regular file' % fifo
    assert tree.adj(100) == 0


@pytest.mark.parametrize('path, kind', [('/dev/zero', 'character device'), ('/', 'directory')])
def test_pidfile_device_or_directory_is_refused(tree, run_module, no_hang, path, kind):
    result = run_module(oom_score_adj, {'pidfile': path, 'value': 500})
    assert result['failed'] is True
    assert result['msg'] == 'pidfile: cannot read %s: it is a %s, not a regular file' % (path, kind)


def test_pidfile_with_two_pids_is_refused(tree, run_module, tmp_path):
    pidfile = write(str(tmp_path), '/two.pid', '100\n300\n')
    result = run_module(oom_score_adj, {'pidfile': pidfile, 'value': 500})
    assert result['failed'] is True
    assert result['msg'].startswith('pidfile: %s holds more than one value (100 300)' % pidfile)
    assert tree.adj(100) == 0 and tree.adj(300) == 250


@pytest.mark.parametrize('pattern', ['.*', '.', '^', 'a*'])
def test_pattern_matching_every_user_process_needs_allow_many(tree, run_module, pattern):
    result = run_module(oom_score_adj, {'process': pattern, 'value': 900})
    assert result['failed'] is True
    assert result['msg'].startswith('process: %r matches every user process on this host (7)' % pattern)
    assert 'allow_many: true' in result['msg']
    assert [tree.adj(pid) for pid in (100, 101, 200, 300)] == [0, 0, 0, 250]
    allowed = run_module(oom_score_adj, {'process': pattern, 'value': 900, 'allow_many': True,
                                         '_ansible_check_mode': True})
    assert allowed['changed'] is True and len(allowed['processes']) == 7


def test_own_process_tree_is_never_touched_even_with_allow_many():
    import subprocess
    import sys
    from ansible_collections.oomguard.memory.plugins.module_utils import processes
    wrapper = subprocess.Popen(['sh', '-c', 'sleep 60; : AnsiballZ_oom_score_adj.py'])
    try:
        table = processes.process_table()
        me = os.getpid()
        chosen = processes.select_targets(table, list(table), children=True,
                                          exclude=processes.own_pids(table, pid=me))
        assert me not in chosen
    finally:
        wrapper.kill()
        wrapper.wait()


def test_boolean_value_and_pid_are_refused(tree, run_module):
    result = run_module(oom_score_adj, {'pid': [100], 'value': True})
    assert result['failed'] is True and result['msg'].startswith('value: True is a boolean')
    result = run_module(oom_score_adj, {'pid': [True], 'value': 500})
    assert result['failed'] is True and result['msg'].startswith('pid: [True] is a boolean')
    assert tree.adj(1) == 0 and tree.adj(100) == 0


def test_daemon_reload_false_writes_the_dropin_and_leaves_the_reload(tree, run_module):
    result = run_module(oom_score_adj, {'unit': 'app', 'value': 500, 'live': False, 'daemon_reload': False})
    assert result['changed'] is True and result['daemon_reload'] is False
    assert 'OOMScoreAdjust=500' in tree.dropin() and tree.reloads == []
    again = run_module(oom_score_adj, {'unit': 'app', 'value': 600, 'live': False})
    assert again['daemon_reload'] is True and tree.reloads == [1]


# ---- keep_stronger: a value already further in the asked direction is left alone

def test_keep_stronger_leaves_a_listener_that_protects_itself_more(tree, run_module):
    # OpenSSH's listener sets itself to -1000; the drop-in asks -900; its child is still at 0
    write(tree.root, '/proc/200/oom_score_adj', '-1000\n')
    tree.set_cap(True)
    result = run_module(oom_score_adj, {'unit': 'app', 'value': -900, 'keep_stronger': True})
    assert result['processes'] == [{'pid': 200, 'name': 'app', 'before': -1000, 'after': -1000},
                                   {'pid': 201, 'name': 'app-child', 'before': 0, 'after': -900}]
    assert tree.adj(200) == -1000 and tree.adj(201) == -900 and tree.dropin() == DROPIN_TEXT % -900
    again = run_module(oom_score_adj, {'unit': 'app', 'value': -900, 'keep_stronger': True})
    assert again['changed'] is False and tree.adj(200) == -1000


def test_without_keep_stronger_the_value_is_exact(tree, run_module):
    write(tree.root, '/proc/200/oom_score_adj', '-1000\n')
    result = run_module(oom_score_adj, {'unit': 'app', 'value': -900, 'children': False})
    assert result['changed'] is True and tree.adj(200) == -900


@pytest.mark.parametrize('before, value, after', [
    (250, 200, 250),     # already killed earlier than asked: kept
    (250, 300, 300),     # raised to the asked value
    (-50, 200, 200),     # the other direction is never "stronger"
    (250, -900, -900),
])
def test_keep_stronger_in_both_directions(tree, run_module, before, value, after):
    tree.set_cap(True)
    write(tree.root, '/proc/300/oom_score_adj', '%d\n' % before)
    result = run_module(oom_score_adj, {'pid': 300, 'value': value, 'keep_stronger': True, 'persist': False})
    assert tree.adj(300) == after and result['changed'] is (after != before)
