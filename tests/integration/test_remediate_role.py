"""playbooks/remediate.yml (the remediate role) for real on this machine: a victim process of the
test stopped by the rules, a protected one spared, the emergency swapfile added and removed
(read back from /proc/swaps and /etc/fstab), refused on a filesystem without room, and check
mode changing nothing. Every test restores the host: victims are killed, swap it made is
swapped off and deleted, loop mounts are unmounted, also on failure.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid

import pytest

PLAYBOOK = 'playbooks/remediate.yml'
VICTIM = ('import sys, time\n'
          'open("/proc/self/comm", "w").write(sys.argv[1])\n'
          'b = bytearray(32 * 1024 * 1024); b[::4096] = b"x" * (len(b) // 4096)\n'
          'sys.stdout.write("ready\\n"); sys.stdout.flush(); time.sleep(600)\n')


def swaps():
    with open('/proc/swaps') as handle:
        return [line.split()[0] for line in handle.read().splitlines()[1:]]


def fstab():
    with open('/etc/fstab') as handle:
        return handle.read()


@pytest.fixture
def victim():
    name = 'ogv' + uuid.uuid4().hex[:8]
    proc = subprocess.Popen([sys.executable, '-c', VICTIM, name], stdout=subprocess.PIPE, universal_newlines=True)
    proc.stdout.readline()
    proc.name = name
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture
def scratch():
    """A directory on the root filesystem (ext4 here) for a swapfile; whatever swap the test left on
    it is swapped off and deleted."""
    path = tempfile.mkdtemp(prefix='oomguard-it-', dir='/var/tmp')
    try:
        yield path
    finally:
        for active in swaps():
            if active.startswith(path):
                subprocess.run(['swapoff', active], check=False)
        shutil.rmtree(path, ignore_errors=True)


def kill_vars(victim, **extra):
    base = {'remediate_kill': True, 'remediate_kill_process': '^%s$' % victim.name, 'remediate_kill_min_rss': '1M',
            'remediate_kill_min_age': 0, 'remediate_kill_grace': 2}
    base.update(extra)
    return base


def test_stops_the_runaway_and_shows_the_evidence(ansible, victim):
    recap = ansible.playbook(PLAYBOOK, extra_vars=kill_vars(victim))
    assert recap.rc == 0, recap.output[-3000:]
    assert victim.wait(timeout=10) == -signal.SIGTERM
    assert recap.changed == 1
    rss = re.search(r'stopped pid %d \(%s, (\d+) MiB RSS\)' % (victim.pid, victim.name), recap.output)
    assert rss and int(rss.group(1)) >= 32, recap.output[-3000:]
    assert 'MemAvailable' in recap.output and 'memory pressure' in recap.output
    assert 'choose: the largest resident memory' in recap.output
    # Again: the victim is gone, nothing matches, nothing changes.
    again = ansible.playbook(PLAYBOOK, extra_vars=kill_vars(victim))
    assert again.rc == 0 and again.changed == 0
    assert 'no process matches the selection' in again.output


def test_spares_the_oom_protect_critical_list(ansible, victim):
    recap = ansible.playbook(PLAYBOOK, extra_vars=kill_vars(victim, oom_protect_critical=[
        {'process': '^%s$' % victim.name}]))
    assert recap.rc == 0 and recap.changed == 0, recap.output[-3000:]
    assert 'on the critical list' in recap.output
    assert victim.poll() is None


def test_check_mode_with_every_action_changes_nothing(ansible, victim, scratch):
    path = os.path.join(scratch, 'emergency.swap')
    swaps_before, fstab_before = swaps(), fstab()
    recap = ansible.playbook(PLAYBOOK, check=True, extra_vars=kill_vars(
        victim, remediate_drop_caches=True, remediate_emergency_swap='present',
        remediate_emergency_swap_path=path, remediate_emergency_swap_size='64M',
        remediate_emergency_swap_below='100%'))
    assert recap.rc == 0, recap.output[-3000:]
    assert 'would stop pid %d' % victim.pid in recap.output
    assert 'check mode: nothing was changed' in recap.output
    assert victim.poll() is None
    assert not os.path.exists(path) and os.listdir(scratch) == []
    assert swaps() == swaps_before and fstab() == fstab_before


def test_emergency_swap_added_only_without_swap_and_removed_again(ansible, scratch):
    if swaps():
        pytest.skip('this host already has swap (%s): the emergency swap would rightly be refused' % swaps())
    path = os.path.join(scratch, 'emergency.swap')
    fstab_before = fstab()
    on = {'remediate_emergency_swap': 'present', 'remediate_emergency_swap_path': path,
          'remediate_emergency_swap_size': '64M', 'remediate_emergency_swap_below': '100%'}
    recap = ansible.playbook(PLAYBOOK, extra_vars=on)
    assert recap.rc == 0 and recap.changed == 1, recap.output[-3000:]
    assert swaps() == [path]
    assert fstab() == fstab_before            # a stopgap: not activated at boot
    again = ansible.playbook(PLAYBOOK, extra_vars=on)
    assert again.rc == 0 and again.changed == 0, again.output[-3000:]
    off = ansible.playbook(PLAYBOOK, extra_vars=dict(on, remediate_emergency_swap='absent'))
    assert off.rc == 0 and off.changed == 1, off.output[-3000:]
    assert swaps() == [] and not os.path.exists(path)


def test_emergency_swap_is_skipped_when_memory_is_not_short(ansible, scratch):
    path = os.path.join(scratch, 'emergency.swap')
    recap = ansible.playbook(PLAYBOOK, extra_vars={
        'remediate_emergency_swap': 'present', 'remediate_emergency_swap_path': path,
        'remediate_emergency_swap_below': '1M'})
    assert recap.rc == 0 and recap.changed == 0
    assert 'no emergency swap' in recap.output
    assert not os.path.exists(path)


def test_emergency_swap_refused_on_a_filesystem_without_room(ansible, scratch):
    if swaps():
        pytest.skip('this host already has swap (%s): the role stops before the reserve rule' % swaps())
    if shutil.which('mkfs.ext4') is None:
        pytest.skip('mkfs.ext4 is not installed')
    image, mountpoint = os.path.join(scratch, 'small.img'), os.path.join(scratch, 'mnt')
    os.mkdir(mountpoint)
    subprocess.run(['truncate', '-s', '48M', image], check=True)
    subprocess.run(['mkfs.ext4', '-q', '-F', image], check=True)
    if subprocess.run(['mount', '-o', 'loop', image, mountpoint], check=False).returncode != 0:
        pytest.skip('loop mounts are not possible here')
    try:
        path = os.path.join(mountpoint, 'emergency.swap')
        recap = ansible.playbook(PLAYBOOK, extra_vars={
            'remediate_emergency_swap': 'present', 'remediate_emergency_swap_path': path,
            'remediate_emergency_swap_size': '40M', 'remediate_emergency_swap_below': '100%'})
        assert recap.rc != 0 and recap.failed == 1
        assert 'reserve' in recap.output
        assert not os.path.exists(path) and swaps() == []
    finally:
        subprocess.run(['umount', mountpoint], check=False)
