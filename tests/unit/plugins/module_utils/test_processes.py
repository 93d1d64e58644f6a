"""Target resolution from a fake /proc tree laid out as the kernel lays it out, and the two
kernel calls (capability check, oom_score_adj write) against a real process where possible."""
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import processes as procs
from ansible_collections.oomguard.memory.plugins.module_utils.procfs import ProcessGone
from faketree import write

PF_KTHREAD = 0x00200000
# CapEff of root on these machines (measured): everything but CAP_SYS_RESOURCE (bit 24).
CAPEFF_WITHOUT = '000001fffeffffff'
CAPEFF_WITH = '000001ffffffffff'


def add_process(root, pid, comm, ppid, argv=None, kernel=False, adj=0, cgroup='/user.slice', v1=True):
    flags = PF_KTHREAD if kernel else 0x400100
    # pid (comm) state ppid pgrp session tty tpgid flags minflt ... starttime(22) vsize rss
    fields = ['S', str(ppid), str(pid), str(pid), '0', '-1', str(flags)] + ['0'] * 12 + ['100', '0', '50']
    write(root, '/proc/%d/stat' % pid, '%d (%s) %s\n' % (pid, comm, ' '.join(fields)))
    write(root, '/proc/%d/cmdline' % pid, '' if kernel or argv is None else '\0'.join(argv) + '\0')
    write(root, '/proc/%d/oom_score_adj' % pid, '%d\n' % adj)
    lines = '12:memory:%s\n1:name=systemd:%s\n0::%s\n' % (cgroup, cgroup, cgroup) if v1 else '0::%s\n' % cgroup
    write(root, '/proc/%d/cgroup' % pid, '' if kernel else lines)


@pytest.fixture
def tree(tmp_path):
    """init, kthreadd + a kworker, sshd with a session child and grandchild, a python worker
    whose comm differs from its command line, a zombie, and a service in its own cgroup."""
    add_process(tmp_path, 1, 'systemd', 0, ['/sbin/init'], cgroup='/init.scope')
    add_process(tmp_path, 2, 'kthreadd', 0, kernel=True)
    add_process(tmp_path, 40, 'kworker/0:1-events', 2, kernel=True)
    add_process(tmp_path, 300, 'sshd', 1, ['sshd: /usr/sbin/sshd -D [listener]'], cgroup='/system.slice/ssh.service')
    add_process(tmp_path, 310, 'sshd', 300, ['sshd: root@pts/0'], cgroup='/user.slice/user-0.slice/session-1.scope')
    add_process(tmp_path, 320, 'bash', 310, ['-bash'], cgroup='/user.slice/user-0.slice/session-1.scope')
    add_process(tmp_path, 400, 'python3', 1, ['/usr/bin/python3', '/opt/app/worker.py', '--queue', 'batch'],
                cgroup='/system.slice/app.service')
    add_process(tmp_path, 401, 'python3', 400, ['/usr/bin/python3', '/opt/app/worker.py', '--child'],
                cgroup='/system.slice/app.service/sub')
    add_process(tmp_path, 402, 'defunct', 400, [], cgroup='/system.slice/app.service')
    add_process(tmp_path, 500, 'app.service-helper', 1, ['helper'], cgroup='/system.slice/app.service-helper.service')
    write(tmp_path, '/proc/self/status', 'Name:\tpython3\nCapEff:\t%s\n' % CAPEFF_WITHOUT)
    return str(tmp_path)


def test_table_flags_kernel_threads(tree):
    table = procs.process_table(tree)
    assert sorted(table) == [1, 2, 40, 300, 310, 320, 400, 401, 402, 500]
    assert [pid for pid in table if table[pid]['kernel']] == [2, 40]
    assert table[310]['ppid'] == 300 and table[320]['comm'] == 'bash'


def test_table_skips_a_process_that_exited_while_listing(tree, monkeypatch):
    real = procs.read_pid_stat

    def racy(pid, root='/'):
        if pid == 320:
            raise ProcessGone('/proc/320/stat: process is gone')
        return real(pid, root)
    monkeypatch.setattr(procs, 'read_pid_stat', racy)
    assert 320 not in procs.process_table(tree)


def test_comm_match_sees_the_kernel_name_only(tree):
    table = procs.process_table(tree)
    assert procs.match_pattern(table, procs.compile_pattern('^sshd$'), 'comm', tree) == [300, 310]
    assert procs.match_pattern(table, procs.compile_pattern('worker'), 'comm', tree) == []


def test_cmdline_match_sees_arguments_and_skips_zombies_and_kthreads(tree):
    table = procs.process_table(tree)
    assert procs.match_pattern(table, procs.compile_pattern(r'worker\.py --queue'), 'cmdline', tree) == [400]
    assert procs.match_pattern(table, procs.compile_pattern('worker'), 'cmdline', tree) == [400, 401]
    # '.' matches anything, but kernel threads and the zombie have no command line
    assert procs.match_pattern(table, procs.compile_pattern('.'), 'cmdline', tree) == [1, 300, 310, 320, 400, 401, 500]
    # ... and kernel threads are never matched by comm either
    assert procs.match_pattern(table, procs.compile_pattern('k'), 'comm', tree) == []


def test_cmdline_match_skips_a_process_that_exited(tree):
    table = procs.process_table(tree)
    os.remove(os.path.join(tree, 'proc/401/cmdline'))
    assert procs.match_pattern(table, procs.compile_pattern('worker'), 'cmdline', tree) == [400]


def test_bad_regex_is_one_sentence():
    with pytest.raises(procs.TargetError) as caught:
        procs.compile_pattern('sshd(')
    assert "'sshd('" in str(caught.value) and 'not a valid regular expression' in str(caught.value)


def test_descendants_walk_the_whole_subtree(tree):
    table = procs.process_table(tree)
    assert procs.descendants(table, [300]) == {310, 320}
    assert procs.descendants(table, [320]) == set()


def test_select_children_and_without(tree):
    table = procs.process_table(tree)
    assert procs.select_targets(table, [300], children=True) == [300, 310, 320]
    assert procs.select_targets(table, [300], children=False) == [300]


def test_select_never_takes_kernel_threads_or_pid1_from_a_pattern(tree):
    table = procs.process_table(tree)
    assert procs.select_targets(table, [1, 2, 40, 300], children=False) == [300]
    # descendants of kthreadd are kernel threads: none is taken
    assert procs.select_targets(table, [2], children=True) == []


def test_pid1_only_when_named_and_never_with_its_descendants(tree):
    table = procs.process_table(tree)
    assert procs.select_targets(table, [1], children=True, explicit=True) == [1]


def test_named_kernel_thread_is_an_error(tree):
    table = procs.process_table(tree)
    with pytest.raises(procs.TargetError) as caught:
        procs.select_targets(table, [40], explicit=True)
    assert 'pid 40 (kworker/0:1-events) is a kernel thread' in str(caught.value)


def test_select_drops_exited_seeds_and_excluded(tree):
    table = procs.process_table(tree)
    assert procs.select_targets(table, [300, 999], children=True, exclude={320}) == [300, 310]


def test_unit_cgroup_takes_the_unit_and_its_subgroups_only(tree):
    table = procs.process_table(tree)
    assert procs.in_control_group(table, '/system.slice/app.service', tree) == [400, 401, 402]
    assert procs.in_control_group(table, '/system.slice/ssh.service', tree) == [300]
    assert procs.in_control_group(table, '', tree) == []


def test_unit_cgroup_on_pure_cgroup_v2(tmp_path):
    add_process(tmp_path, 1, 'systemd', 0, ['/sbin/init'], cgroup='/init.scope', v1=False)
    add_process(tmp_path, 7, 'sleep', 1, ['sleep'], cgroup='/system.slice/t.service', v1=False)
    table = procs.process_table(str(tmp_path))
    assert procs.in_control_group(table, '/system.slice/t.service', str(tmp_path)) == [7]


def test_pidfile(tmp_path):
    good = write(tmp_path, 'good.pid', '1234\n')
    assert procs.read_pidfile(good) == 1234
    for text in ('', 'abc\n', '0\n', '-5\n'):
        bad = write(tmp_path, 'bad.pid', text)
        with pytest.raises(procs.TargetError) as caught:
            procs.read_pidfile(bad)
        assert 'does not hold a process id' in str(caught.value)
    with pytest.raises(procs.TargetError) as caught:
        procs.read_pidfile(str(tmp_path / 'missing.pid'))
    assert 'cannot read' in str(caught.value) and 'missing.pid' in str(caught.value)


def test_capability_from_capeff(tree, tmp_path):
    assert procs.has_capability(procs.CAP_SYS_RESOURCE, tree) is False
    assert procs.has_capability(21, tree) is True    # CAP_SYS_ADMIN
    write(tree, '/proc/self/status', 'CapEff:\t%s\n' % CAPEFF_WITH)
    assert procs.has_capability(procs.CAP_SYS_RESOURCE, tree) is True


def test_capability_of_this_machine_matches_proc_self_status():
    with open('/proc/self/status') as handle:
        capeff = [line.split()[1] for line in handle if line.startswith('CapEff:')][0]
    assert procs.has_capability(procs.CAP_SYS_RESOURCE) == bool(int(capeff, 16) & (1 << 24))


@pytest.mark.parametrize('before, after, needed', [
    (0, 500, False), (500, 0, False), (500, 100, False), (0, 0, False),
    (0, -1, True), (300, -900, True), (-900, -500, False), (-500, -900, True), (-900, 0, False),
])
def test_needs_capability_uses_a_floor_of_zero(before, after, needed):
    assert procs.needs_capability(before, after) is needed


def test_write_to_fake_tree_replaces_the_value(tree):
    procs.write_oom_score_adj(400, 5, tree)
    with open(os.path.join(tree, 'proc/400/oom_score_adj')) as handle:
        assert handle.read() == '5\n'


def test_write_to_an_exited_process_is_process_gone(tree):
    with pytest.raises(ProcessGone):
        procs.write_oom_score_adj(4242, 5, tree)


@pytest.mark.skipif(os.geteuid() != 0, reason='writes another process of ours through /proc')
def test_write_real_process_and_the_kernel_floor():
    """The kernel rule the module predicts with, on a real child: raise, lower back to 0, and
    (without CAP_SYS_RESOURCE) refuse anything below 0 with AdjustDenied."""
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        procs.write_oom_score_adj(child.pid, 600)
        procs.write_oom_score_adj(child.pid, 0)
        with open('/proc/%d/oom_score_adj' % child.pid) as handle:
            assert handle.read().strip() == '0'
        if not procs.has_capability(procs.CAP_SYS_RESOURCE):
            with pytest.raises(procs.AdjustDenied) as caught:
                procs.write_oom_score_adj(child.pid, -1)
            assert 'refused -1' in str(caught.value)
    finally:
        child.kill()
        child.wait()


def test_own_pids_covers_the_ansible_wrapper_shell_and_stops_above_it():
    """A real 'sh -c ... AnsiballZ_x.py' wrapper around a process, as Ansible runs modules."""
    wrapper = subprocess.Popen(['sh', '-c', 'sleep 60; : AnsiballZ_oom_score_adj.py'])
    kids = []
    try:
        for _attempt in range(200):
            table = procs.process_table()
            kids = [pid for pid, stat in table.items() if stat['ppid'] == wrapper.pid]
            if kids:
                break
            time.sleep(0.01)
        assert kids, 'the wrapper shell did not start its child'
        assert procs.own_pids(table, pid=kids[0]) == {kids[0], wrapper.pid}
        assert procs.own_pids(table, pid=os.getpid()) == {os.getpid()}
    finally:
        wrapper.kill()
        wrapper.wait()
        for pid in kids:
            try:
                os.kill(pid, 9)
            except OSError:
                pass


def test_widen_pipe_grows_a_real_pipe_and_ignores_what_is_no_pipe():
    import fcntl
    import io
    get_size = getattr(fcntl, 'F_GETPIPE_SZ', 1032)
    with open('/proc/sys/fs/pipe-max-size') as f:
        allowed = int(f.read())
    read_fd, write_fd = os.pipe()
    try:
        with os.fdopen(read_fd, 'rb') as pipe:
            before = fcntl.fcntl(read_fd, get_size)
            procs.widen_pipe(pipe)
            after = fcntl.fcntl(read_fd, get_size)
    finally:
        os.close(write_fd)
    assert before < procs.PIPE_BYTES
    if allowed >= procs.PIPE_BYTES:
        assert after >= procs.PIPE_BYTES
    else:
        # above fs.pipe-max-size only with CAP_SYS_RESOURCE; refused, the pipe keeps its size, and no error
        assert after == before or after >= procs.PIPE_BYTES
    procs.widen_pipe(io.BytesIO(b'not a pipe'))
