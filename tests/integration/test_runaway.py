"""runaway for real: throwaway victim processes of this test, stopped or spared by the kernel's
signals, read back from the kernel (the victim's exit status, /proc/PID).

Every refusal is tested against a live process that the rule protects, chosen explicitly or by
a pattern only it matches, with thresholds that would otherwise let it be stopped: if the module
touched it, the victim would be dead or stopped and the test fails. Real runs always name their
victim (pid or a unique pattern): the module is never pointed at "the largest process" of this
shared machine except in check mode.
"""
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

M = 'oomguard.memory.runaway'

# A victim: sets its own comm (the kernel name the rules see), optionally ignores SIGTERM or asks
# for a negative oom_score_adj, allocates some MiB, says ready, then waits.
VICTIM = r'''
import signal, sys, time
name, mib, term, adj = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
open("/proc/self/comm", "w").write(name)
if term == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
status = "adj-ok"
if adj != "none":
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write(adj)
    except OSError:
        status = "adj-denied"
block = bytearray(mib * 1024 * 1024)
block[::4096] = b"x" * (len(block) // 4096)
sys.stdout.write(status + "\n"); sys.stdout.flush()
time.sleep(600)
'''


class Victims(object):
    def __init__(self):
        self.tag = 'ogr' + uuid.uuid4().hex[:6]
        self.procs = []

    def start(self, suffix='', mib=8, term='default', adj='none', name=None):
        name = name or (self.tag + suffix)[:15]
        proc = subprocess.Popen([sys.executable, '-c', VICTIM, name, str(mib), term, adj],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, universal_newlines=True)
        proc.status = proc.stdout.readline().strip()
        proc.name = name
        self.procs.append(proc)
        return proc

    def cleanup(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@pytest.fixture
def victims():
    v = Victims()
    try:
        yield v
    finally:
        v.cleanup()


def untouched(proc):
    """Alive, not stopped (state T), not a zombie: the signals never came."""
    assert proc.poll() is None, 'victim %d was stopped (rc %s)' % (proc.pid, proc.returncode)
    with open('/proc/%d/stat' % proc.pid) as handle:
        state = handle.read().rsplit(')', 1)[1].split()[0]
    assert state in ('S', 'R'), state


def verdict_of(result, pid):
    return next(c for c in result['candidates'] if c['pid'] == pid)


def test_stops_the_largest_matching_process_with_sigterm(ansible, victims):
    small = victims.start('a', mib=8)
    large = victims.start('b', mib=48)
    result = ansible.module(M, process='^%s' % victims.tag, min_rss='1M', min_age=0, grace=5)
    assert result['changed'] is True, result
    assert large.wait(timeout=10) == -signal.SIGTERM
    untouched(small)
    stopped = result['stopped']
    assert (stopped['pid'], stopped['name'], stopped['signals'], stopped['exited']) == (
        large.pid, large.name, ['SIGTERM'], True)
    assert stopped['rss_kb'] >= 48 * 1024
    assert verdict_of(result, small.pid)['verdict'] == 'eligible'
    assert any('largest resident memory' in rule for rule in result['rules'])


def test_sigkill_after_the_grace_period_when_sigterm_is_ignored(ansible, victims):
    stubborn = victims.start(term='ignore', mib=8)
    began = time.monotonic()
    result = ansible.module(M, pid=stubborn.pid, min_rss='1M', min_age=0, grace=2)
    assert stubborn.wait(timeout=10) == -signal.SIGKILL
    assert result['stopped']['signals'] == ['SIGTERM', 'SIGKILL']
    assert time.monotonic() - began >= 2


def test_check_mode_reports_the_choice_and_sends_nothing(ansible, victims):
    proc = victims.start(mib=16)
    result = ansible.module(M, check=True, process='^%s$' % proc.name, min_rss='1M', min_age=0)
    assert result['changed'] is True
    assert result['stopped']['pid'] == proc.pid and result['stopped']['exited'] is None
    assert result['actions'][0].startswith('SIGTERM pid %d' % proc.pid)
    time.sleep(0.5)
    untouched(proc)


def test_check_mode_without_a_pattern_touches_nothing(ansible, victims):
    proc = victims.start(mib=8)
    result = ansible.module(M, check=True, min_rss='1M', min_age=0)
    untouched(proc)
    assert result['candidates'], result
    pid1 = [c for c in result['candidates'] if c['pid'] == 1]
    assert all(c['verdict'] == 'refused' for c in pid1)


@pytest.mark.parametrize('case', ['pid1', 'kernel_thread', 'ancestor'])
def test_refuses_pid1_kernel_threads_and_its_own_ancestors(ansible, case):
    pid = {'pid1': 1, 'kernel_thread': 2, 'ancestor': os.getpid()}[case]
    before = open('/proc/%d/stat' % pid).read().split()[21]     # starttime: the same process after
    result = ansible.module(M, pid=pid, min_rss='0', min_age=0, grace=1)
    assert result['changed'] is False and result['stopped'] is None
    reason = verdict_of(result, pid)['reason']
    assert {'pid1': 'PID 1', 'kernel_thread': 'kernel thread', 'ancestor': 'runs this task'}[case] in reason
    assert open('/proc/%d/stat' % pid).read().split()[21] == before


def test_refuses_the_ssh_daemon(ansible, victims):
    proc = victims.start(name='sshd', mib=16)
    result = ansible.module(M, pid=proc.pid, min_rss='0', min_age=0, grace=1)
    assert result['stopped'] is None
    assert 'SSH daemon' in verdict_of(result, proc.pid)['reason']
    untouched(proc)


def test_refuses_the_critical_list_of_oom_protect(ansible, victims):
    proc = victims.start('crit', mib=16)
    protect = [{'process': '^%s$' % proc.name}, {'unit': 'postgresql'}]
    result = ansible.module(M, process='^%s' % victims.tag, min_rss='1M', min_age=0, grace=1, protect=protect)
    assert result['stopped'] is None, result
    assert 'critical list' in verdict_of(result, proc.pid)['reason']
    untouched(proc)


def test_refuses_a_process_younger_than_min_age(ansible, victims):
    proc = victims.start(mib=16)
    result = ansible.module(M, pid=proc.pid, min_rss='1M', min_age=3600, grace=1)
    assert 'younger than min_age' in verdict_of(result, proc.pid)['reason']
    untouched(proc)


def test_refuses_a_process_smaller_than_min_rss(ansible, victims):
    proc = victims.start(mib=8)
    result = ansible.module(M, pid=proc.pid, min_rss='10G', min_age=0, grace=1)
    assert 'smaller than min_rss' in verdict_of(result, proc.pid)['reason']
    untouched(proc)


def test_refuses_a_process_with_negative_oom_score_adj(ansible, victims):
    proc = victims.start(mib=16, adj='-100')
    if proc.status == 'adj-denied':
        pytest.skip('this host refuses negative oom_score_adj (no CAP_SYS_RESOURCE); the rule is unit-tested '
                    'in tests/unit/plugins/module_utils/test_runaway.py')
    result = ansible.module(M, pid=proc.pid, min_rss='1M', min_age=0, grace=1)
    assert 'below 0' in verdict_of(result, proc.pid)['reason']
    untouched(proc)


def test_bad_pattern_is_one_sentence(ansible):
    result = ansible.module(M, process='([', min_age=0)
    assert result.get('failed') and 'not a valid regular expression' in result['msg']
    assert 'Traceback' not in result['msg']
