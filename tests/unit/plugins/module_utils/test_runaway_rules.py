"""runaway's rules on a fake /proc: every refusal, the choice of the largest, the words the rules are
shown in, and the SIGTERM/SIGKILL and systemctl sequences with injected signals and clocks (the
real signals are in tests/integration/test_runaway.py)."""
import signal

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import runaway
from faketree import write

PF_KTHREAD = 0x00200000
TICKS = runaway.CLOCK_TICKS


def add(root, pid, comm, ppid=1, rss_mb=0, age=10000, adj=0, kernel=False, cgroup='/user.slice/session-1.scope',
        state='S', argv=None, uptime=20000):
    start = int((uptime - age) * TICKS)
    fields = [state, str(ppid), str(pid), str(pid), '0', '-1', str(PF_KTHREAD if kernel else 0)] + ['0'] * 12 + \
        [str(start), '0', '0']
    write(root, '/proc/%d/stat' % pid, '%d (%s) %s\n' % (pid, comm, ' '.join(fields)))
    write(root, '/proc/%d/status' % pid, 'Name:\t%s\n' % comm + ('' if kernel else 'VmRSS:\t%d kB\n' % (rss_mb * 1024)))
    write(root, '/proc/%d/oom_score_adj' % pid, '%d\n' % adj)
    write(root, '/proc/%d/cgroup' % pid, '' if kernel else '1:name=systemd:%s\n0::%s\n' % (cgroup, cgroup))
    argv = argv if argv is not None else ([] if kernel else ['/usr/bin/' + comm])
    write(root, '/proc/%d/cmdline' % pid, '\0'.join(argv) + '\0' if argv else '')


@pytest.fixture
def root(tmp_path):
    write(tmp_path, '/proc/uptime', '20000.00 30000.00\n')
    add(tmp_path, 1, 'init', ppid=0, rss_mb=5000, cgroup='/init.scope')
    add(tmp_path, 2, 'kthreadd', ppid=0, kernel=True)
    add(tmp_path, 50, 'sshd', rss_mb=4000, cgroup='/system.slice/ssh.service')
    add(tmp_path, 60, 'bash', ppid=1, rss_mb=1)
    add(tmp_path, 61, 'python3', ppid=60, rss_mb=3000)          # the "module" in these tests
    add(tmp_path, 100, 'java', rss_mb=2000, cgroup='/system.slice/batch-import.service')
    add(tmp_path, 101, 'postgres', rss_mb=1900, adj=-900, cgroup='/system.slice/postgresql.service')
    add(tmp_path, 102, 'redis-server', rss_mb=1800, cgroup='/system.slice/redis.service')
    add(tmp_path, 103, 'leaky', rss_mb=1700, age=30)
    add(tmp_path, 104, 'tiny', rss_mb=10)
    add(tmp_path, 105, 'defunct', rss_mb=1600, state='Z')
    return str(tmp_path)


def evaluate(root, own_pid=61, **rules):
    rows = runaway.snapshot(root)
    rules.setdefault('min_rss_kb', 256 * 1024)
    rules.setdefault('min_age_s', 300)
    return runaway.evaluate(rows, runaway.Rules(**rules), set(runaway.ancestors(rows, own_pid)))


def by_pid(result):
    return dict((c['pid'], c) for c in result)


def test_every_refusal_has_its_reason_and_the_largest_allowed_is_chosen(root):
    result = by_pid(evaluate(root, protect=[{'unit': 'redis'}]))
    assert result[1]['reason'] == 'PID 1 (init) is never stopped'
    assert result[2]['reason'] == 'kernel thread'
    assert result[50]['reason'] == 'the SSH daemon is never stopped'
    assert result[61]['reason'].startswith('runs this task') and result[60]['verdict'] == 'refused'
    assert result[101]['reason'] == 'oom_score_adj -900 is below 0: marked as protected'
    assert result[102]['reason'] == 'on the critical list (unit redis.service)'
    assert result[103]['reason'] == 'younger than min_age (30 s < 300 s)'
    assert result[104]['reason'].startswith('smaller than min_rss')
    assert result[105]['reason'] == 'already exiting (zombie)'
    assert result[100]['verdict'] == 'chosen' and result[100]['unit'] == 'batch-import.service'
    assert [c['verdict'] for c in result.values()].count('chosen') == 1


def test_candidates_are_largest_first(root):
    result = evaluate(root)
    sizes = [c['rss_kb'] for c in result]
    assert sizes == sorted(sizes, reverse=True)


def test_patterns_narrow_the_choice(root):
    assert [c['pid'] for c in evaluate(root, process='^redis')] == [102]
    assert [c['pid'] for c in evaluate(root, unit=r'^batch-.*\.service$')] == [100]
    assert [c['pid'] for c in evaluate(root, process='java', match='cmdline')] == [100]
    assert [c['pid'] for c in evaluate(root, pid=101)] == [101]
    assert evaluate(root, process='^nothing$') == []


def test_protect_by_process_pattern_in_the_oom_protect_shape(root):
    result = by_pid(evaluate(root, protect=[{'process': '^java$', 'match': 'comm', 'value': -900}]))
    assert 'critical list' in result[100]['reason']
    assert result[102]['verdict'] == 'chosen'


def test_sshd_session_names_and_units_are_spared(root, tmp_path):
    add(tmp_path, 70, 'sshd-session', rss_mb=5000)
    add(tmp_path, 71, 'helper', rss_mb=5000, cgroup='/system.slice/sshd.service')
    result = by_pid(evaluate(root))
    assert 'SSH' in result[70]['reason'] and 'SSH' in result[71]['reason']


@pytest.mark.parametrize('item, message', [
    ({'unit': 'a', 'process': 'b'}, 'exactly one of unit or process'),
    ({}, 'exactly one of unit or process'),
    ({'process': '(['}, 'not a valid regular expression'),
    ({'process': 'x', 'match': 'argv'}, 'match must be comm or cmdline'),
])
def test_bad_protect_items_are_one_sentence(item, message):
    with pytest.raises(runaway.RunawayError, match=message.replace('(', r'\(')):
        runaway.Rules(protect=[item])


def test_rules_read_as_sentences():
    lines = runaway.Rules(process='^java$', unit='batch', min_rss_kb=1024 * 1024, min_age_s=60,
                          protect=[{'unit': 'postgresql.service'}]).describe()
    assert lines[0] == ("choose: the largest resident memory (RSS) among user processes whose name (comm) "
                        "matches '^java$' and whose systemd unit matches 'batch'")
    assert 'never: the critical list (unit postgresql.service)' in lines
    assert 'never: a process younger than 60 s (min_age)' in lines
    assert 'never: a process smaller than 1G RSS (min_rss)' in lines


@pytest.mark.parametrize('cgroup, unit', [
    ('1:name=systemd:/system.slice/app.service\n0::/system.slice/app.service\n', 'app.service'),
    ('0::/system.slice/app.service/worker\n', 'app.service'),
    ('0::/user.slice/user-0.slice/session-3.scope\n', 'session-3.scope'),
    ('0::/\n', None),
    ('', None),
])
def test_unit_of(cgroup, unit):
    from ansible_collections.oomguard.memory.plugins.module_utils.procfs import parse_pid_cgroup
    assert runaway.unit_of(parse_pid_cgroup(cgroup)) == unit


class FakeClock(object):
    def __init__(self):
        self.now = 0.0

    def sleep(self, seconds):
        self.now += seconds

    def __call__(self):
        return self.now


def test_sigterm_then_sigkill_after_the_grace_period(root, tmp_path):
    row = runaway.snapshot(root)[100]
    clock, sent = FakeClock(), []

    def kill(pid, signum):
        sent.append((pid, signum, clock.now))
        if signum == signal.SIGKILL:          # ignores SIGTERM, dies on SIGKILL
            add(tmp_path, 100, 'java', rss_mb=2000, state='Z')
    outcome = runaway.stop_process(row, 5, root, kill=kill, sleep=clock.sleep, clock=clock)
    assert [s[1] for s in sent] == [signal.SIGTERM, signal.SIGKILL]
    assert sent[1][2] >= 5
    assert outcome['signals'] == ['SIGTERM', 'SIGKILL'] and outcome['exited'] is True


def test_sigterm_alone_when_the_process_exits(root, tmp_path):
    row = runaway.snapshot(root)[100]
    clock, sent = FakeClock(), []

    def kill(pid, signum):
        sent.append(signum)
        add(tmp_path, 100, 'java', rss_mb=2000, state='Z')
    outcome = runaway.stop_process(row, 5, root, kill=kill, sleep=clock.sleep, clock=clock)
    assert sent == [signal.SIGTERM] and outcome['exited'] is True


def test_a_reused_pid_is_not_signalled(root, tmp_path):
    row = runaway.snapshot(root)[100]
    add(tmp_path, 100, 'other', rss_mb=10, age=1)      # same pid, another start time
    sent = []
    outcome = runaway.stop_process(row, 5, root, kill=lambda pid, sig: sent.append(sig))
    assert sent == [] and outcome['exited'] is True


@pytest.mark.parametrize('action, expected', [
    ('restart', [['restart', 'batch-import.service']]),
    ('kill', [['kill', '--kill-whom=all', '--signal=SIGTERM', 'batch-import.service'],
              ['kill', '--kill-whom=all', '--signal=SIGKILL', 'batch-import.service']]),
])
def test_units_go_through_systemctl(root, tmp_path, action, expected):
    row = runaway.snapshot(root)[100]
    clock, calls = FakeClock(), []

    def systemctl(args):
        calls.append(args)
        if args[0] == 'restart' or '--signal=SIGKILL' in args:
            add(tmp_path, 100, 'java', rss_mb=2000, state='Z')
    outcome = runaway.stop_unit(row, 'batch-import.service', action, 5, systemctl, root, clock.sleep, clock)
    assert calls == expected and outcome['exited'] is True
