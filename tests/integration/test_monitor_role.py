"""The monitor role on this machine (no systemd as PID 1: the cron path) for real: check mode
changes nothing, a run installs the collector and is idempotent, a real OOM kill in a memory
cgroup moves exactly its labelled counter in the written oomguard.prom on the next collector
run (run as the cron entry says), promtool accepts the file, and state absent removes it all.

Every path the role writes is redirected into a temporary directory except the cron.d entry,
whose name is unique to the test; state absent and a final clean-up remove it."""
import os
import shlex
import shutil
import stat
import subprocess
import sys
import time
import uuid

import pytest

from kernel import limit_memcg, memcg_root, systemd_is_pid1, vmstat_oom_kill

PLAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'playbooks', 'monitor_role.yml')
# Names itself (comm) so its kill line is unmistakable, waits for the go, then touches 200 MiB.
HOG = ('import sys\n'
       'open("/proc/self/comm", "w").write(sys.argv[1])\n'
       'sys.stdin.readline()\n'
       'chunks = [bytes([1]) * (1 << 20) for _ in range(200)]\n')


def family(text, name):
    """{frozenset(label pairs): value} of one metric family, parsed here (not by the collector)."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + '{') or line.startswith(name + ' '):
            series, value = line.rsplit(' ', 1)
            labels = series[len(name):].strip('{}')
            pairs = [p.split('=', 1) for p in labels.split('",') if p]
            found[frozenset((k, v.strip('"')) for k, v in pairs)] = float(value)
    return found


class MemoryCgroup(object):
    """A throwaway memory cgroup limited to 64M that swap cannot soften (kernel.limit_memcg), on
    cgroup v1 or v2, whichever owns the memory controller here."""

    def __init__(self, name):
        root = memcg_root()
        if root is None:
            pytest.skip('no cgroup hierarchy here can get memory limits')
        self.path = os.path.join(root, name)
        self.name = '/' + name

    def __enter__(self):
        os.mkdir(self.path)
        try:
            limit_memcg(self.path, 64 << 20)
        except BaseException:
            os.rmdir(self.path)
            raise
        return self

    def __exit__(self, *_exc):
        for _attempt in range(50):
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError('test cgroup %s could not be removed' % self.path)

    def oom_kill(self, comm):
        proc = subprocess.Popen([sys.executable, '-c', HOG, comm], stdin=subprocess.PIPE)
        try:
            with open(os.path.join(self.path, 'cgroup.procs'), 'w') as handle:
                handle.write(str(proc.pid))
            proc.stdin.write(b'go\n')
            proc.stdin.close()
            return proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def monitor(ansible, tmp_path):
    """Role variables for a collector that lives in tmp_path, and its clean-up (state absent)."""
    name = 'oomguard-it-%s' % uuid.uuid4().hex[:8]
    extra = {
        'monitor_name': name,
        'monitor_scheduler': 'cron',
        'monitor_cron_install': False,
        'monitor_textfile_dir': str(tmp_path / 'textfile'),
        'monitor_install_dir': str(tmp_path / 'install'),
        'monitor_state_dir': str(tmp_path / 'state'),
        'monitor_config_path': str(tmp_path / 'monitor.json'),
        'monitor_python': '/usr/bin/python3',
        'monitor_cgroups': [],
    }
    cron_file = '/etc/cron.d/' + name
    try:
        yield extra, cron_file
    finally:
        ansible.playbook(PLAY, extra_vars=dict(extra, monitor_state='absent'))
        if os.path.exists(cron_file):
            os.unlink(cron_file)


def cron_command(cron_file):
    """The command of the cron entry, without its output redirection: what cron would run."""
    with open(cron_file) as handle:
        lines = [l for l in handle if l.startswith('* * * * * root ')]
    assert len(lines) == 1, lines
    command = lines[0][len('* * * * * root '):].strip()
    assert command.endswith(' >/dev/null 2>&1')
    return command[:-len(' >/dev/null 2>&1')]


@pytest.mark.slow
def test_a_real_oom_kill_moves_its_counter_on_the_next_run(ansible, monitor, tmp_path):
    extra, cron_file = monitor
    textfile = os.path.join(extra['monitor_textfile_dir'], 'oomguard.prom')

    recap = ansible.playbook(PLAY, check=True, extra_vars=extra)
    assert recap.rc == 0, recap.output[-3000:]
    assert recap.changed > 0
    assert not os.path.exists(extra['monitor_config_path']) and not os.path.exists(cron_file)
    assert not os.path.exists(extra['monitor_install_dir'])

    recap = ansible.playbook(PLAY, extra_vars=extra)
    assert recap.rc == 0 and recap.failed == 0, recap.output[-3000:]
    assert recap.changed > 0
    # the handler ran the installed collector once: the file is there, world-readable
    assert stat.S_IMODE(os.stat(textfile).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(extra['monitor_state_dir']).st_mode) == 0o700
    recap = ansible.playbook(PLAY, extra_vars=extra)
    assert recap.rc == 0 and recap.changed == 0, recap.output[-3000:]

    command = cron_command(cron_file)
    assert shlex.split(command)[:2] == ['/usr/bin/python3', '-I']
    comm = 'oomhog%s' % uuid.uuid4().hex[:6]
    with MemoryCgroup('oomguard-it-%s' % uuid.uuid4().hex[:8]) as cgroup:
        subprocess.run(['sh', '-c', command], check=True)
        with open(textfile) as handle:
            before = handle.read()
        kernel_before = vmstat_oom_kill()
        rc = cgroup.oom_kill(comm)
        assert rc == -9, 'the hog was expected to be OOM-killed (SIGKILL), it ended with %r' % rc
        assert vmstat_oom_kill() >= kernel_before + 1     # the kernel's own view: it was the OOM killer
        time.sleep(0.2)
        subprocess.run(['sh', '-c', command], check=True)
    with open(textfile) as handle:
        after = handle.read()
    ours = frozenset([('victim', comm), ('memcg', cgroup.name), ('oom_memcg', cgroup.name)])
    assert ours not in family(before, 'oomguard_oom_kills_total')
    assert family(after, 'oomguard_oom_kills_total')[ours] == 1
    assert family(after, 'oomguard_collector_success') == {frozenset(): 1.0}, after[:2000]
    assert family(after, 'oomguard_oom_last_kill_timestamp_seconds')[frozenset()] >= time.time() - 120
    # a third run adds nothing: the position in the log was kept
    subprocess.run(['sh', '-c', command], check=True)
    with open(textfile) as handle:
        assert family(handle.read(), 'oomguard_oom_kills_total')[ours] == 1

    if shutil.which('promtool'):
        with open(textfile) as handle:
            proc = subprocess.run(['promtool', 'check', 'metrics'], stdin=handle, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        assert proc.returncode == 0, proc.stdout

    recap = ansible.playbook(PLAY, extra_vars=dict(extra, monitor_state='absent'))
    assert recap.rc == 0 and recap.changed > 0, recap.output[-3000:]
    for path in (cron_file, textfile, extra['monitor_config_path'], extra['monitor_install_dir'],
                 extra['monitor_state_dir']):
        assert not os.path.exists(path), path
    assert os.path.isdir(extra['monitor_textfile_dir'])   # the exporter's directory stays
    recap = ansible.playbook(PLAY, extra_vars=dict(extra, monitor_state='absent'))
    assert recap.rc == 0 and recap.changed == 0, recap.output[-3000:]


@pytest.mark.parametrize('bad, words', [
    ({'monitor_log_sources': ['syslog']}, 'monitor_log_sources must list auto, kmsg, journal'),
    ({'monitor_name': 'Bad Name'}, 'monitor_name must be lower-case letters'),
    ({'monitor_critical': [{'unit': 'a', 'process': 'b'}]}, 'names exactly one of unit or process'),
    ({'monitor_scheduler': 'systemd'}, 'systemd is not PID 1'),
    ({'monitor_userspace_killer': 'systemd-oomd', 'monitor_oomd_slices': ['system.slice']},
     'needs systemd as PID 1'),
    ({'monitor_userspace_killer': 'earlyoom', 'monitor_earlyoom_avoid': '^(my app)$'}, 'no blanks, quotes or backslashes'),
])
def test_bad_input_is_refused_and_the_host_unchanged(ansible, monitor, bad, words):
    extra, cron_file = monitor
    if words in ('systemd is not PID 1', 'needs systemd as PID 1') and systemd_is_pid1():
        pytest.skip('systemd is PID 1 on this machine')
    recap = ansible.playbook(PLAY, extra_vars=dict(extra, **bad))
    assert recap.rc != 0 and recap.failed == 1
    assert words in ' '.join(recap.output.split()), recap.output[-3000:]
    assert not os.path.exists(extra['monitor_config_path']) and not os.path.exists(cron_file)
