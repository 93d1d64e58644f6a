"""oom_score_adj for real: the module changes throwaway processes of this test through the kernel,
and the tests read the kernel's own view back (/proc/PID/oom_score_adj and /proc/PID/oom_score).

Values here are positive, or lowered back to 0: the kernel allows a process to go back down to its
floor (0 for processes no privileged writer touched) without CAP_SYS_RESOURCE. Below 0 the test
probes the capability and expects what the kernel does with or without it. Units need systemd as
PID 1: those tests run in the systemd container testbed (tests/testbed/).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from kernel import has_cap_sys_resource, systemd_is_pid1


M = 'oomguard.memory.oom_score_adj'
UNIT = 'oomguard-test.service'
DROPIN = '/etc/systemd/system/%s.d/50-oomguard-oom-score-adj.conf' % UNIT


def adj(pid):
    with open('/proc/%d/oom_score_adj' % pid) as handle:
        return int(handle.read())


def score(pid):
    with open('/proc/%d/oom_score' % pid) as handle:
        return int(handle.read())


def children_of(pid):
    with open('/proc/%d/task/%d/children' % (pid, pid)) as handle:
        return [int(p) for p in handle.read().split()]


class Procs(object):
    """Throwaway processes with names and arguments no other process has; killed at the end."""

    def __init__(self):
        self.tag = 'ogt' + uuid.uuid4().hex[:8]
        self.dir = tempfile.mkdtemp(prefix='oomguard-it-')
        self.started = []

    def sleeper(self):
        """A sleep whose comm is unique (it runs through a symlink named after the tag)."""
        link = os.path.join(self.dir, self.tag)
        if not os.path.exists(link):
            os.symlink(shutil.which('sleep'), link)
        return self._start([link, '600'])

    def python_with_child(self):
        """python3 with one child sleep; its command line carries the tag. Returns (parent, child)."""
        code = 'import subprocess, sys, time; c = subprocess.Popen(["sleep", "600"]); time.sleep(600)'
        proc = self._start([sys.executable, '-c', code, '--marker=%s' % self.tag])
        for _attempt in range(200):
            kids = children_of(proc.pid)
            if kids:
                return proc.pid, kids[0]
            time.sleep(0.01)
        raise AssertionError('the python parent did not start its child')

    def _start(self, argv):
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.started.append(proc)
        return proc

    def cleanup(self):
        for proc in self.started:
            for kid in children_of(proc.pid) if proc.poll() is None else []:
                try:
                    os.kill(kid, 9)
                except OSError:
                    pass
            proc.kill()
            proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def procs():
    p = Procs()
    try:
        yield p
    finally:
        p.cleanup()


def test_pid_raises_the_value_the_kernel_sees_and_is_idempotent(ansible, procs):
    pid = procs.sleeper().pid
    score_before = score(pid)
    result = ansible.module(M, pid=pid, value=500)
    assert result['changed'] is True, result
    assert result['processes'] == [{'pid': pid, 'name': procs.tag, 'before': 0, 'after': 500}]
    assert adj(pid) == 500
    # oom_score is the kernel's kill ranking: (1000 + badness + adj) scaled by 2/3 since Linux 5.9,
    # badness being a sleep's few pages: raising adj by 500 raises the ranking by about 333
    assert abs(score(pid) - score_before - 500 * 2 // 3) <= 2, (score_before, score(pid))
    again = ansible.module(M, pid=pid, value=500)
    assert again['changed'] is False and adj(pid) == 500


def test_check_mode_predicts_and_changes_nothing(ansible, procs):
    pid = procs.sleeper().pid
    result = ansible.module(M, check=True, pid=pid, value=300, persist=False)
    assert result['changed'] is True and result['processes'][0]['after'] == 300
    assert adj(pid) == 0


def test_diff_mode_shows_before_and_after(ansible, procs):
    pid = procs.sleeper().pid
    result = ansible.module(M, diff=True, pid=pid, value=300, persist=False)
    assert result['diff'] == [{'before_header': 'oom_score_adj', 'after_header': 'oom_score_adj',
                               'before': '/proc/%d/oom_score_adj (%s): 0\n' % (pid, procs.tag),
                               'after': '/proc/%d/oom_score_adj (%s): 300\n' % (pid, procs.tag)}]
    assert adj(pid) == 300


def test_children_get_the_value_unless_asked_not_to(ansible, procs):
    parent, child = procs.python_with_child()
    result = ansible.module(M, pid=parent, value=200, children=False, persist=False)
    assert [p['pid'] for p in result['processes']] == [parent]
    assert (adj(parent), adj(child)) == (200, 0)
    result = ansible.module(M, pid=parent, value=300, persist=False)
    assert sorted(p['pid'] for p in result['processes']) == sorted([parent, child])
    assert (adj(parent), adj(child)) == (300, 300)


def test_pidfile(ansible, procs):
    pid = procs.sleeper().pid
    pidfile = os.path.join(procs.dir, 'app.pid')
    with open(pidfile, 'w') as handle:
        handle.write('%d\n' % pid)
    result = ansible.module(M, pidfile=pidfile, value=400, persist=False)
    assert result['changed'] is True and adj(pid) == 400


def test_process_by_comm_matches_only_ours(ansible, procs):
    one, two = procs.sleeper().pid, procs.sleeper().pid
    result = ansible.module(M, process='^%s$' % procs.tag, value=600, persist=False)
    assert sorted(p['pid'] for p in result['processes']) == sorted([one, two])
    assert adj(one) == adj(two) == 600


def test_process_by_cmdline_with_and_without_children(ansible, procs):
    parent, child = procs.python_with_child()
    # comm of the parent is python3: its command line is what carries the tag
    assert ansible.module(M, check=True, process=procs.tag, value=100, persist=False)['processes'] == []
    result = ansible.module(M, process='--marker=%s' % procs.tag, match='cmdline', value=100,
                            children=False, persist=False)
    assert [p['pid'] for p in result['processes']] == [parent] and (adj(parent), adj(child)) == (100, 0)
    result = ansible.module(M, process='--marker=%s' % procs.tag, match='cmdline', value=150, persist=False)
    assert sorted(p['pid'] for p in result['processes']) == sorted([parent, child])
    assert (adj(parent), adj(child)) == (150, 150)


def test_lowering_back_towards_zero_needs_no_capability(ansible, procs):
    """The kernel's floor: from 700 down to 100 works without CAP_SYS_RESOURCE."""
    pid = procs.sleeper().pid
    ansible.module(M, pid=pid, value=700, persist=False)
    result = ansible.module(M, pid=pid, value=100, persist=False)
    assert result['changed'] is True and adj(pid) == 100


def test_absent_puts_processes_carrying_our_value_back_to_zero(ansible, procs):
    marked, other = procs.sleeper().pid, procs.sleeper().pid
    ansible.module(M, pid=marked, value=420, persist=False)
    ansible.module(M, pid=other, value=430, persist=False)
    result = ansible.module(M, process='^%s$' % procs.tag, value=420, state='absent')
    assert result['changed'] is True
    assert (adj(marked), adj(other)) == (0, 430)
    assert ansible.module(M, process='^%s$' % procs.tag, value=420, state='absent')['changed'] is False


def test_lowering_below_zero_with_cap_sys_resource_reaches_the_kernel(ansible, procs):
    if not has_cap_sys_resource():
        pytest.skip('this host runs without CAP_SYS_RESOURCE; the refusal test below covers it')
    pid = procs.sleeper().pid
    result = ansible.module(M, pid=pid, value=-500, persist=False)
    assert result['changed'] is True and adj(pid) == -500
    assert ansible.module(M, pid=pid, value=-500, persist=False)['changed'] is False


def test_lowering_below_zero_without_cap_sys_resource_fails_clearly_and_changes_nothing(ansible, procs):
    if has_cap_sys_resource():
        pytest.skip('this host has CAP_SYS_RESOURCE, so the kernel lets root go below 0 (tested above)')
    low, high = procs.sleeper().pid, procs.sleeper().pid
    ansible.module(M, pid=high, value=300, persist=False)
    for check in (True, False):
        result = ansible.module(M, check=check, pid=[low, high], value=-500, persist=False)
        assert result.get('failed') is True
        assert result['msg'].startswith('cannot lower oom_score_adj to -500 for pid %d (%s, now 0), %d (%s, now 300): '
                                        'going below 0 needs CAP_SYS_RESOURCE' % (low, procs.tag, high, procs.tag))
        assert 'nothing was changed' in result['msg'] and 'OOMScoreAdjust=' in result['msg']
        # neither process changed, not even the one a lower value would have been written to first
        assert (adj(low), adj(high)) == (0, 300)


def test_missing_process(ansible, procs):
    pattern = '^%s-none$' % procs.tag
    result = ansible.module(M, process=pattern, value=5, persist=False)
    assert result['changed'] is False and result['processes'] == [] and not result.get('failed')
    result = ansible.module(M, process=pattern, value=5, missing='fail')
    assert result['failed'] is True and 'no running process matches' in result['msg']


def test_unit_on_a_host_without_systemd_is_a_clear_error(ansible):
    if systemd_is_pid1():
        pytest.skip('systemd is PID 1 on this host; units are tested against a running systemd instead')
    result = ansible.module(M, unit='ssh', value=100)
    assert result['failed'] is True and 'needs systemd as PID 1' in result['msg']


@pytest.mark.parametrize('args, words', [
    ({'pid': 1, 'value': 1001}, 'value: 1001 is out of range'),
    ({'pid': 1, 'process': 'x', 'value': 1}, 'mutually exclusive'),
    ({'value': 1}, 'one of the following is required: pid, pidfile, process, unit'),
    ({'process': 'sleep(', 'value': 1}, "process: 'sleep(' is not a valid regular expression"),
    ({'pid': 2, 'value': 1}, 'pid 2 (kthreadd) is a kernel thread'),
])
def test_bad_input(ansible, procs, args, words):
    pid = procs.sleeper().pid
    result = ansible.module(M, **args)
    assert result.get('failed') is True and words in result['msg'], result
    assert 'Traceback' not in result['msg'] and adj(pid) == 0 and adj(1) == 0


# ---- units, in the systemd container testbed

@pytest.mark.slow
def test_unit_in_systemd_container(systemd_container):
    box = systemd_container

    def show():
        rc, out = box.exec(['systemctl', 'show', '-p', 'OOMScoreAdjust', '-p', 'MainPID', UNIT])
        assert rc == 0, out
        values = dict(line.split('=', 1) for line in out.split())
        return int(values['OOMScoreAdjust']), int(values['MainPID'])

    def proc_adj(pid):
        rc, out = box.exec(['cat', '/proc/%d/oom_score_adj' % pid])
        assert rc == 0, out
        return int(out)

    try:
        assert show()[0] == 0
        pid = show()[1]
        # check mode: predicts the drop-in and the reload, writes nothing
        result = box.module(M, check=True, unit=UNIT, value=500)
        assert result['changed'] is True and result['daemon_reload'] is True, result
        assert box.exec(['test', '-e', DROPIN])[0] == 1 and proc_adj(pid) == 0

        result = box.module(M, diff=True, unit=UNIT, value=500)
        assert result['changed'] is True and result['dropin'] == DROPIN and result['daemon_reload'] is True
        assert result['processes'] == [{'pid': pid, 'name': 'sleep', 'before': 0, 'after': 500}]
        assert '+OOMScoreAdjust=500' in result['_output']
        rc, text = box.exec(['cat', DROPIN])
        assert text.endswith('[Service]\nOOMScoreAdjust=500\n')
        # daemon-reload ran: systemd itself reports the new value, and the running process has it
        assert show() == (500, pid) and proc_adj(pid) == 500
        assert box.module(M, unit=UNIT, value=500)['changed'] is False

        # systemd applies it at every start: the restarted service's new main process carries it
        assert box.exec(['systemctl', 'restart', UNIT])[0] == 0
        value, new_pid = show()
        assert new_pid != pid and value == 500 and proc_adj(new_pid) == 500

        # negative values: live lowering needs CAP_SYS_RESOURCE, which the container lacks too
        rc, out = box.exec(['grep', 'CapEff', '/proc/1/status'])
        has_cap = bool(int(out.split()[1], 16) & (1 << 24))
        result = box.module(M, unit=UNIT, value=-900)
        if not has_cap:
            assert result['failed'] is True and 'write only the drop-in with live: false' in result['msg']
            assert proc_adj(new_pid) == 500 and box.exec(['grep', '-q', '=500', DROPIN])[0] == 0
            result = box.module(M, unit=UNIT, value=-900, live=False)
        assert result['changed'] is True and show()[0] == -900
        assert box.exec(['systemctl', 'restart', UNIT])[0] == 0
        third_pid = show()[1]
        # systemd tries OOMScoreAdjust=-900 at start; without the capability it ignores the
        # refusal ("assuming containerized execution") and the process keeps the default 0
        assert proc_adj(third_pid) == (-900 if has_cap else 0)

        # absent: drop-in removed, reload, systemd back to 0
        result = box.module(M, unit=UNIT, value=-900, state='absent')
        assert result['changed'] is True and result['daemon_reload'] is True
        assert box.exec(['test', '-e', DROPIN])[0] == 1 and show()[0] == 0
        # absent on a running process carrying our value: back to 0, no capability needed
        box.module(M, unit=UNIT, value=700)
        result = box.module(M, unit=UNIT, value=700, state='absent')
        assert result['changed'] is True and proc_adj(third_pid) == 0 and show()[0] == 0
    finally:
        box.exec(['rm', '-rf', os.path.dirname(DROPIN)])
        box.exec(['systemctl', 'daemon-reload'])
        box.exec(['systemctl', 'restart', UNIT])
