"""The monitor role on the VM testbed (systemd as PID 1, cgroup v2 with the memory controller,
journald reading the kernel log): the timer is enabled, the collector reads the journal, and a
real OOM kill of a transient service limited by systemd (MemoryMax=64M, MemorySwapMax=0) moves
its counter, labelled with the service's cgroup, on the next run of the collector's service.
Where systemd-oomd is installed, the role sets ManagedOOMMemoryPressure=kill on a slice.

Needs the ``vm`` fixture of tests/integration/testbed.py (tests/testbed/vm.sh); skipped where
this tree has none."""
import os
import time

import pytest

PLAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'playbooks', 'monitor_role.yml')
UNIT = 'oomguard-monitor'
TEXTFILE = '/var/lib/prometheus/node-exporter/oomguard.prom'
HOG = 'open("/proc/self/comm", "w").write("oomvmhog"); chunks = [bytes([1]) * (1 << 20) for _ in range(200)]'


@pytest.fixture
def vm_box(request):
    try:
        box = request.getfixturevalue('vm')
    except pytest.FixtureLookupError:
        pytest.skip('this tree has no VM testbed fixture (vm in tests/integration/testbed.py)')
    try:
        yield box
    finally:
        box.playbook(PLAY, extra_vars={'monitor_state': 'absent'})


def counters(text):
    found = {}
    for line in text.splitlines():
        if line.startswith('oomguard_oom_kills_total{'):
            series, value = line.rsplit(' ', 1)
            found[series] = float(value)
    return found


@pytest.mark.slow
def test_timer_journal_and_a_real_oom_kill(vm_box):
    recap = vm_box.playbook(PLAY)
    assert recap.rc == 0 and recap.changed > 0, recap.output[-3000:]
    recap = vm_box.playbook(PLAY)
    assert recap.rc == 0 and recap.changed == 0, recap.output[-3000:]
    rc, out = vm_box.exec(['systemctl', 'is-enabled', UNIT + '.timer'])
    assert out.strip() == 'enabled', out
    rc, out = vm_box.exec(['systemctl', 'start', UNIT + '.service'])
    assert rc == 0, out
    rc, state = vm_box.exec(['cat', '/var/lib/%s/state.json' % UNIT])
    assert '"journal"' in state, state          # auto picked the journal: journald runs here

    rc, out = vm_box.exec(['systemd-run', '--unit', 'oomguard-vmhog', '-p', 'MemoryMax=64M', '-p', 'MemorySwapMax=0',
                           '--wait', '/usr/bin/python3', '-c', HOG])
    assert rc != 0, out                          # killed by the kernel inside its limit
    time.sleep(1)
    rc, out = vm_box.exec(['systemctl', 'start', UNIT + '.service'])
    assert rc == 0, out
    rc, text = vm_box.exec(['cat', TEXTFILE])
    series = ('oomguard_oom_kills_total{memcg="/system.slice/oomguard-vmhog.service",'
              'oom_memcg="/system.slice/oomguard-vmhog.service",victim="oomvmhog"}')
    assert counters(text).get(series) == 1, text[-3000:]
    assert 'oomguard_collector_success 1' in text
    vm_box.exec(['systemctl', 'reset-failed', 'oomguard-vmhog.service'])

    recap = vm_box.playbook(PLAY, extra_vars={'monitor_state': 'absent'})
    assert recap.rc == 0 and recap.changed > 0, recap.output[-3000:]
    assert vm_box.exec(['test', '-e', TEXTFILE])[0] != 0
    assert vm_box.exec(['test', '-e', '/etc/systemd/system/%s.timer' % UNIT])[0] != 0


def test_systemd_oomd_on_a_slice(vm_box):
    if vm_box.exec(['test', '-x', '/lib/systemd/systemd-oomd'])[0] != 0:
        pytest.skip('systemd-oomd is not installed in the VM image (and the VM has no package mirror)')
    extra = {'monitor_userspace_killer': 'systemd-oomd', 'monitor_oomd_slices': ['oomguard-test.slice']}
    recap = vm_box.playbook(PLAY, extra_vars=extra)
    assert recap.rc == 0, recap.output[-3000:]
    rc, out = vm_box.exec(['systemctl', 'show', '-p', 'ManagedOOMMemoryPressure', '--value', 'oomguard-test.slice'])
    assert out.strip() == 'kill', out
    rc, out = vm_box.exec(['systemctl', 'is-active', 'systemd-oomd'])
    assert out.strip() == 'active', out
    recap = vm_box.playbook(PLAY, extra_vars=dict(extra, monitor_state='absent'))
    assert recap.rc == 0, recap.output[-3000:]
    rc, out = vm_box.exec(['systemctl', 'show', '-p', 'ManagedOOMMemoryPressure', '--value', 'oomguard-test.slice'])
    assert out.strip() == 'auto', out
