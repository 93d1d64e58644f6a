"""The monitor role on the VM testbed (systemd as PID 1, cgroup v2 with the memory controller,
journald reading the kernel log), read back through the VM's own view: systemd, /proc, the journal,
node_exporter over the VM's loopback and oomctl.

Each Ansible task costs seconds under TCG, so the file runs the role three times on the one VM
of the session: present with earlyoom (the module fixture; the first two tests read what it
left), present with systemd-oomd, then absent with no killer asked for.

- the timer is enabled and fires by itself, and its own run counts a real OOM kill of a
  transient service limited by systemd (MemoryMax=64M, MemorySwapMax=0) under the service's
  cgroup; node_exporter (Debian's package, started by the test: the role only writes its
  textfile) serves the oomguard_ families and that counter on 127.0.0.1:9100 inside the VM;
- earlyoom runs with the avoid and prefer expressions derived from the oom_protect lists, in
  /etc/default/earlyoom and unchanged in the running process' argv (systemd split nothing);
- systemd-oomd is active and has ManagedOOMMemoryPressure=kill on the chosen slice (oomctl), and
  the earlyoom of the run before is stopped and disabled (two killers never act at once);
- state absent (with monitor_userspace_killer none) removes the timer, the service, the collector, its configuration and state, the
  metrics file and the slice's drop-in.
"""
import os
import time

import pytest

from testbed import show

PLAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'playbooks', 'monitor_role.yml')
UNIT = 'oomguard-monitor'
TEXTFILE = '/var/lib/prometheus/node-exporter/oomguard.prom'
SLICE = 'oomguard-test.slice'
VARS = {
    'oom_protect_critical': [{'unit': 'oomguard-test.service'}, {'process': '^systemd-journal$'}],
    'oom_protect_sacrificial': [{'unit': 'batch-import.service'}, {'process': '^stress', 'match': 'comm'}],
}
EARLYOOM = dict(VARS, monitor_userspace_killer='earlyoom')
OOMD = dict(VARS, monitor_userspace_killer='systemd-oomd', monitor_oomd_slices=[SLICE])
AVOID = '^(sshd|oomguard-test)$|(^systemd-journal$)'
PREFER = '^(batch-import)$|(^stress)'
HOG = 'open("/proc/self/comm", "w").write("oomvmhog"); chunks = [bytes([1]) * (1 << 20) for _ in range(200)]'
KILLS = ('oomguard_oom_kills_total{memcg="/system.slice/oomguard-vmhog.service",'
         'oom_memcg="/system.slice/oomguard-vmhog.service",victim="oomvmhog"}')


def counters(text):
    found = {}
    for line in text.splitlines():
        if line.startswith('oomguard_oom_kills_total{'):
            series, value = line.rsplit(' ', 1)
            found[series] = float(value)
    return found


def scrape(vm):
    """node_exporter's page, fetched inside the VM over its loopback; None while it does not answer."""
    rc, out = vm.exec(['curl', '-sSf', 'http://127.0.0.1:9100/metrics'])
    return out if rc == 0 else None


def oomctl_listing(vm):
    """oomctl's dump of what systemd-oomd watches, once it names the test slice; else None."""
    out = vm.exec(['oomctl'])[1]
    return out if '/%s' % SLICE in out else None


def wait(what, probe, seconds):
    """Poll probe() once a second until it returns something true; return that."""
    for _attempt in range(seconds):
        found = probe()
        if found:
            return found
        time.sleep(1)
    raise AssertionError('%s: not within %d s' % (what, seconds))


@pytest.fixture(scope='module')
def monitored(vm):
    """The VM after the role ran with earlyoom; everything the file turned on is taken away again."""
    try:
        recap = vm.playbook(PLAY, extra_vars=EARLYOOM)
        assert recap.rc == 0, recap.output[-3000:]
        yield vm
    finally:
        if vm.exec(['test', '-e', '/etc/systemd/system/%s.timer' % UNIT])[0] == 0:
            vm.playbook(PLAY, extra_vars=dict(OOMD, monitor_state='absent'))
        vm.exec(['sh', '-c', 'systemctl disable --now earlyoom prometheus-node-exporter systemd-oomd.service '
                 'systemd-oomd.socket; systemctl stop %s; systemctl reset-failed oomguard-vmhog.service; true' % SLICE])


@pytest.mark.slow
def test_the_timer_counts_a_real_oom_kill_and_node_exporter_serves_it(monitored):
    vm = monitored
    assert show(vm, UNIT + '.timer', 'UnitFileState') == 'enabled'
    assert show(vm, UNIT + '.timer', 'ActiveState') == 'active'
    rc, state = vm.exec(['cat', '/var/lib/%s/state.json' % UNIT])
    assert '"journal"' in state, state          # auto picked the journal: journald keeps kernel messages
    rc, text = vm.exec(['cat', TEXTFILE])        # written by the handler's first run
    assert rc == 0 and 'oomguard_collector_success 1' in text, text[-3000:]
    before = counters(text).get(KILLS, 0)

    rc, out = vm.exec(['systemd-run', '--unit', 'oomguard-vmhog', '-p', 'MemoryMax=64M', '-p', 'MemorySwapMax=0',
                       '--wait', '/usr/bin/python3', '-c', HOG])
    assert rc != 0, out
    assert show(vm, 'oomguard-vmhog.service', 'Result') == 'oom-kill'     # systemd saw the kernel kill it

    # The timer's own run (OnCalendar=minutely), not one we start, counts the kill.
    fired = show(vm, UNIT + '.timer', 'LastTriggerUSecMonotonic')
    wait('the timer fires by itself', lambda: show(vm, UNIT + '.timer', 'LastTriggerUSecMonotonic') != fired, 80)
    wait('the collector run finishes', lambda: show(vm, UNIT + '.service', 'ActiveState') != 'activating', 60)
    assert show(vm, UNIT + '.service', 'Result') == 'success'
    rc, text = vm.exec(['cat', TEXTFILE])
    assert counters(text).get(KILLS) == before + 1, text[-3000:]

    # node_exporter (the role writes its textfile, it does not manage the exporter) serves the
    # families over the VM's loopback.
    rc, out = vm.exec(['systemctl', 'start', 'prometheus-node-exporter.service'])
    assert rc == 0, out
    scraped = wait('node_exporter answers on 127.0.0.1:9100', lambda: scrape(vm), 60)
    assert 'node_textfile_scrape_error 0' in scraped
    for family in ('oomguard_oom_kills_total', 'oomguard_collector_success', 'oomguard_collector_last_run_timestamp_seconds',
                   'oomguard_critical_service_protected', 'oomguard_swap_size_bytes', 'oomguard_memory_pressure_ratio'):
        assert '# TYPE %s ' % family in scraped, family
    assert 'oomguard_collector_success 1' in scraped
    assert counters(scraped).get(KILLS) == before + 1
    # sshd runs here and is watched by default (oom_protect protects it), so it is counted.
    assert 'oomguard_critical_service_processes{service="sshd"} 1' in scraped


@pytest.mark.slow
def test_earlyoom_runs_with_the_derived_expressions(monitored):
    vm = monitored
    assert show(vm, 'earlyoom.service', 'ActiveState') == 'active'
    rc, config = vm.exec(['cat', '/etc/default/earlyoom'])
    assert 'EARLYOOM_ARGS="-r 3600 --avoid %s --prefer %s"' % (AVOID, PREFER) in config, config
    # What systemd made of EARLYOOM_ARGS: the running process' argv, one expression per argument.
    pid = show(vm, 'earlyoom.service', 'MainPID')
    rc, out = vm.exec(['cat', '/proc/%s/cmdline' % pid])
    assert rc == 0, out
    argv = out.split('\0')
    assert argv[argv.index('--avoid') + 1] == AVOID, argv
    assert argv[argv.index('--prefer') + 1] == PREFER, argv
    # and what earlyoom itself understood (its start-up lines in the journal)
    rc, log = vm.exec(['journalctl', '-b', '-u', 'earlyoom.service', '--no-pager', '-o', 'cat'])
    assert "Preferring to kill process names that match regex '%s'" % PREFER in log, log[-2000:]
    assert "Will avoid killing process names that match regex '%s'" % AVOID in log, log[-2000:]


@pytest.mark.slow
def test_systemd_oomd_watches_the_chosen_slice(monitored):
    vm = monitored
    recap = vm.playbook(PLAY, extra_vars=OOMD)
    assert recap.rc == 0, recap.output[-3000:]
    assert show(vm, SLICE, 'ManagedOOMMemoryPressure') == 'kill'
    assert show(vm, 'systemd-oomd.service', 'ActiveState') == 'active'
    assert show(vm, 'systemd-oomd.service', 'UnitFileState') == 'enabled'
    # the earlyoom the role set up in the run before is switched off: never two killers at once
    assert show(vm, 'earlyoom.service', 'ActiveState') == 'inactive'
    assert show(vm, 'earlyoom.service', 'UnitFileState') == 'disabled'
    # systemd hands oomd the slice once its cgroup exists
    rc, out = vm.exec(['systemctl', 'start', SLICE])
    assert rc == 0, out
    listed = wait('oomctl lists the slice', lambda: oomctl_listing(vm), 30)
    # systemctl show prints the limit as a raw fraction of 2^32 in systemd 252: oomctl's view instead
    assert 'Memory Pressure Limit: 60.00%' in listed.split('/%s' % SLICE, 1)[1], listed


@pytest.mark.slow
def test_absent_removes_the_timer_collector_and_metrics(monitored):
    vm = monitored
    # with no killer asked for: the role still takes its systemd-oomd drop-in away
    recap = vm.playbook(PLAY, extra_vars=dict(VARS, monitor_state='absent'))
    assert recap.rc == 0 and recap.changed > 0, recap.output[-3000:]
    for path in ('/etc/systemd/system/%s.timer' % UNIT, '/etc/systemd/system/%s.service' % UNIT,
                 '/usr/local/lib/' + UNIT, '/var/lib/' + UNIT, '/etc/%s.json' % UNIT, TEXTFILE,
                 '/etc/systemd/system/%s.d/50-%s-oomd.conf' % (SLICE, UNIT)):
        assert vm.exec(['test', '-e', path])[0] != 0, path
    assert show(vm, UNIT + '.timer', 'LoadState') == 'not-found'
    rc, out = vm.exec(['systemctl', 'list-timers', '--all', '--no-legend'])
    assert UNIT not in out, out
    assert show(vm, SLICE, 'ManagedOOMMemoryPressure') == 'auto'
