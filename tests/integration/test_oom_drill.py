"""The OOM fire drill (playbooks/drill.yml) for real on this machine's memory cgroups.

Passing drill: a real OOM kill inside the drill's cgroup, read back from the kernel (the
/proc/vmstat oom_kill count went up, no drill cgroup is left in the memory hierarchy, a critical
process of the test still runs with the same pid and start time) and from the reports it wrote.
Refusals: nothing may start, so the kernel's oom_kill count and the memory hierarchy stay as
they were, and the report names what is missing. Check mode: nothing at all changes.

Runs with the Python hog and, when the host has it (make test installs it), stress-ng.
A cgroup v2 host with systemd is covered by tests/integration/test_oom_drill_vm.py when the
VM testbed exists, and by unit tests on fake trees.
"""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from kernel import vmstat_oom_kill

PLAYBOOK = 'playbooks/drill.yml'
MEMCG = '/sys/fs/cgroup/memory'


def drill_cgroups():
    return set(glob.glob(os.path.join(MEMCG, 'oomguard-drill-*')))


class Critical(object):
    """A throwaway 'critical service': a sleep with a unique name; its pid and start time."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='oomguard-it-')
        self.name = 'ogd' + uuid.uuid4().hex[:8]
        link = os.path.join(self.dir, self.name)
        os.symlink(shutil.which('sleep'), link)
        self.proc = subprocess.Popen([link, '600'])
        self.start = self.starttime()

    def starttime(self):
        with open('/proc/%d/stat' % self.proc.pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[19]

    def item(self, **extra):
        return dict({'process': '^%s$' % self.name}, **extra)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir)


@pytest.fixture
def critical():
    crit = Critical()
    try:
        yield crit
    finally:
        crit.stop()


@pytest.fixture
def run(ansible, tmp_path):
    """Run the drill playbook with an inventory where localhost is a canary; return (recap, reports)."""
    if not os.path.isdir(MEMCG):
        pytest.skip('no cgroup v1 memory hierarchy at %s (the cgroup v2 path runs in the VM testbed)' % MEMCG)
    inventory = tmp_path / 'inventory.ini'
    inventory.write_text('[canary]\nlocalhost ansible_connection=local\n')
    reports = tmp_path / 'reports'
    leftover_before = drill_cgroups()

    def go(check=False, inventory_text=None, **extra):
        if inventory_text is not None:
            inventory.write_text(inventory_text)
        extra.setdefault('drill_report_dir', str(reports))
        extra.setdefault('drill_ssh', False)
        recap = ansible.playbook(PLAYBOOK, check=check, extra_vars=extra, inventory=str(inventory))
        report = None
        path = reports / 'localhost.json'
        if path.exists():
            report = json.loads(path.read_text())
        return recap, report
    try:
        yield go
    finally:
        # The drill removes its own cgroup; a failed run must not leave one for the next test.
        for path in drill_cgroups() - leftover_before:
            for pid in open(os.path.join(path, 'cgroup.procs')).read().split():
                os.kill(int(pid), 9)
            os.rmdir(path)


def checks_of(report):
    return dict((c['name'], c) for c in report['checks'])


def ensure_stress_ng():
    """stress-ng from Debian when missing (a fresh CI machine), or None when it cannot be had."""
    if shutil.which('stress-ng') is None and shutil.which('apt-get') is not None:
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        for argv in (['apt-get', 'install', '-y', '-q', 'stress-ng'], ['apt-get', 'update', '-q'],
                     ['apt-get', 'install', '-y', '-q', 'stress-ng']):
            if subprocess.run(['flock', '/tmp/oomguard-apt.lock'] + argv, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env, check=False).returncode == 0 and argv[1] == 'install':
                break
    return shutil.which('stress-ng')


@pytest.mark.slow
@pytest.mark.parametrize('hog', ['python', 'stress-ng'])
def test_drill_passes_oom_kill_inside_the_limit_and_spares_the_critical_process(run, critical, hog, tmp_path):
    if hog == 'stress-ng' and ensure_stress_ng() is None:
        pytest.skip('stress-ng is not installed and apt-get could not install it; the Python hog covers the drill')
    kills = vmstat_oom_kill()
    cgroups = drill_cgroups()
    # This machine cannot hold a negative oom_score_adj (no CAP_SYS_RESOURCE): the critical item's
    # ceiling is 0 here, so what is proven is that confinement alone spared it.
    recap, report = run(drill_hog=hog, drill_critical=[critical.item(max_oom_score_adj=0)])
    assert recap.rc == 0, recap.output[-3000:]
    assert report['status'] == 'passed', report
    checks = checks_of(report)
    assert all(c['passed'] for c in report['checks'])
    assert set(checks) >= {'canary', 'critical_protected', 'hog_confined', 'hog_oom_killed_in_limit',
                           'critical_unchanged', 'mem_available_returned', 'nothing_left_behind',
                           'oom_facts_reported'}
    assert 'oom_memcg=%s' % report['cgroup'] in checks['oom_facts_reported']['detail']
    # The kernel's view, not the report's.
    assert vmstat_oom_kill() >= kills + 1
    assert drill_cgroups() == cgroups
    assert critical.proc.poll() is None and critical.starttime() == critical.start
    assert critical.proc.pid in report['critical'][0]['pids']
    # The other two shapes of the same report.
    reports = tmp_path / 'reports'
    assert '| hog_oom_killed_in_limit | pass |' in (reports / 'localhost.md').read_text()
    assert 'failures="0"' in (reports / 'localhost.xml').read_text()


def test_drill_refuses_when_a_critical_service_is_not_protected(run, critical):
    kills = vmstat_oom_kill()
    cgroups = drill_cgroups()
    recap, report = run(drill_critical=[critical.item()])
    assert recap.rc != 0 and recap.failed == 1
    assert report['status'] == 'refused'
    detail = checks_of(report)['preflight']['detail']
    assert critical.name in detail and 'not protected' in detail
    assert 'not protected' in recap.output
    assert vmstat_oom_kill() == kills and drill_cgroups() == cgroups
    assert critical.proc.poll() is None and critical.starttime() == critical.start


def test_drill_refuses_when_a_critical_service_is_not_running(run):
    recap, report = run(drill_critical=[{'process': '^no-such-process-%s$' % uuid.uuid4().hex[:6]}])
    assert recap.rc != 0
    assert report['status'] == 'refused' and 'is not running' in report['msg']


def test_drill_refuses_the_ssh_daemon_unprotected(run):
    pids = subprocess.run(['pgrep', '-x', '-P', '1', 'sshd'], stdout=subprocess.PIPE, universal_newlines=True,
                          check=False).stdout.split()
    if not pids:
        pytest.skip('no SSH daemon runs on this host')
    if all(int(open('/proc/%s/oom_score_adj' % pid).read()) < 0 for pid in pids):
        pytest.skip('the SSH daemon here is protected already')
    kills = vmstat_oom_kill()
    recap, report = run(drill_ssh=True)
    assert report['status'] == 'refused' and 'sshd' in report['msg'] and 'not protected' in report['msg']
    assert vmstat_oom_kill() == kills


@pytest.mark.parametrize('backend', ['systemd_scope', 'cgroup_v2'])
def test_drill_refuses_when_the_hog_cannot_be_confined(run, backend):
    unified_memory = 'memory' in open('/sys/fs/cgroup/unified/cgroup.controllers').read().split() \
        if os.path.exists('/sys/fs/cgroup/unified/cgroup.controllers') else False
    if backend == 'systemd_scope' and os.path.isdir('/run/systemd/system'):
        pytest.skip('systemd runs here, a scope could be made')
    if backend == 'cgroup_v2' and unified_memory:
        pytest.skip('the cgroup v2 hierarchy here has the memory controller')
    kills = vmstat_oom_kill()
    cgroups = drill_cgroups()
    recap, report = run(drill_backend=backend)
    assert recap.rc != 0
    assert report['status'] == 'refused'
    assert 'cannot be confined' in report['msg'] or 'backend cgroup_v2' in report['msg'], report['msg']
    assert vmstat_oom_kill() == kills and drill_cgroups() == cgroups


@pytest.mark.parametrize('group', ['all', 'ungrouped', 'localhost'])
def test_drill_refuses_a_group_that_is_not_a_canary_group(run, group):
    kills = vmstat_oom_kill()
    recap, report = run(inventory_text='localhost ansible_connection=local\n', drill_canary_group=group)
    assert recap.rc != 0 and recap.failed == 1
    assert 'drill refused on localhost' in recap.output
    assert report is None and vmstat_oom_kill() == kills


def test_drill_does_not_reach_hosts_outside_the_canary_group(run):
    kills = vmstat_oom_kill()
    recap, report = run(inventory_text='[web]\nlocalhost ansible_connection=local\n')
    assert 'no hosts matched' in recap.output, recap.output[-2000:]
    assert report is None and vmstat_oom_kill() == kills


def test_check_mode_changes_nothing(run, critical, tmp_path):
    kills = vmstat_oom_kill()
    cgroups = drill_cgroups()
    recap, report = run(check=True, drill_critical=[critical.item(max_oom_score_adj=0)])
    assert recap.rc == 0, recap.output[-3000:]
    assert 'would run the drill' in recap.output
    assert report is None and not (tmp_path / 'reports').exists()
    assert vmstat_oom_kill() == kills and drill_cgroups() == cgroups
    assert critical.proc.poll() is None and critical.starttime() == critical.start


@pytest.fixture
def swap_on():
    """Swap active during the test: the host's own, or a 128 MiB swapfile made (and removed) here."""
    with open('/proc/swaps') as handle:
        if len(handle.read().splitlines()) > 1:
            yield None
            return
    directory = tempfile.mkdtemp(prefix='oomguard-it-', dir='/var/tmp')
    path = os.path.join(directory, 'drill.swap')
    try:
        subprocess.run(['dd', 'if=/dev/zero', 'of=%s' % path, 'bs=1M', 'count=128', 'status=none'], check=True)
        os.chmod(path, 0o600)
        subprocess.run(['mkswap', '-q', path], check=True, stdout=subprocess.DEVNULL)
        if subprocess.run(['swapon', path], check=False).returncode != 0:
            pytest.skip('swapon is not possible on this host')
        yield path
    finally:
        subprocess.run(['swapoff', path], check=False, stderr=subprocess.DEVNULL)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
def test_swap_cannot_hide_the_kill(run, swap_on):
    """With swap on, a memory limit alone lets the hog page out and live; the drill limits
    memory+swap (memsw), so the kernel still kills it inside the box."""
    if not os.path.exists(os.path.join(MEMCG, 'memory.memsw.limit_in_bytes')):
        pytest.skip('this kernel has no swap accounting (memsw); the drill refuses here, see the unit tests')
    kills = vmstat_oom_kill()
    recap, report = run(drill_hog='python')
    assert recap.rc == 0, recap.output[-3000:]
    assert 'swap limited too' in dict((c['name'], c) for c in report['checks'])['hog_confined']['detail']
    assert report['status'] == 'passed' and vmstat_oom_kill() >= kills + 1
