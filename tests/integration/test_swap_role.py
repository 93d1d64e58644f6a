"""The swap role for real on this machine: converge, idempotence, check mode on a clean host,
absent, its documentation, and the skip inside a container (the systemd container testbed).

The ``host`` fixture saves /etc/fstab (bytes), vm.swappiness and the role's sysctl.d file, and puts
them back, swapping off and deleting the test swap file, also when a test fails.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from harness import ROOT, ansible_env
# The session fixture, used by the container test below.

MIB = 1024 ** 2
FSTAB = '/etc/fstab'
LIVE = '/proc/sys/vm/swappiness'
OURS = '/etc/sysctl.d/90-oomguard-swappiness.conf'
PLAYBOOK = os.path.join(ROOT, 'tests', 'integration', 'playbooks', 'swap_role.yml')
IN_CONTAINER = os.path.join(ROOT, 'tests', 'integration', 'playbooks', 'swap_role_container.yml')


def proc_swaps():
    with open('/proc/swaps') as handle:
        lines = handle.read().splitlines()[1:]
    return {f[0]: (int(f[2]), int(f[3]), int(f[4])) for f in (line.split() for line in lines)}


def read(path, mode='r'):
    if not os.path.exists(path):
        return None
    with open(path, mode) as handle:
        return handle.read()


def live():
    return int(read(LIVE))


@pytest.fixture
def host():
    directory = tempfile.mkdtemp(prefix='oomguard-it-role-', dir='/var/tmp')
    saved = {'fstab': read(FSTAB, 'rb'), 'swappiness': live(), 'ours': read(OURS)}
    try:
        yield directory
    finally:
        for path in proc_swaps():
            if path.startswith(directory + '/'):
                subprocess.run(['swapoff', path], check=False)
        shutil.rmtree(directory, ignore_errors=True)
        if read(FSTAB, 'rb') != saved['fstab']:
            with open(FSTAB, 'wb') as handle:
                handle.write(saved['fstab'])
        with open(LIVE, 'w') as handle:
            handle.write('%d\n' % saved['swappiness'])
        if saved['ours'] is None:
            if os.path.exists(OURS):
                os.unlink(OURS)
        elif read(OURS) != saved['ours']:
            with open(OURS, 'w') as handle:
                handle.write(saved['ours'])
    assert not [p for p in proc_swaps() if p.startswith(directory)]
    assert read(FSTAB, 'rb') == saved['fstab'] and live() == saved['swappiness']


def role_vars(directory, **extra):
    # A host that has its own file of the role's sysctl.d name keeps it: the module refuses to
    # rewrite it, so there the role is run with swappiness left alone (null).
    swappiness = None if os.path.exists(OURS) else (13 if live() != 13 else 14)
    values = {'swap_file_path': os.path.join(directory, 'swapfile'), 'swap_size': '32M',
              'swap_swappiness': swappiness}
    values.update(extra)
    return values


def test_check_mode_on_a_clean_host_changes_nothing(ansible, host):
    fstab, swappiness, ours = read(FSTAB, 'rb'), live(), read(OURS)
    variables = role_vars(host)
    recap = ansible.playbook(PLAYBOOK, check=True, diff=True, extra_vars=variables)
    assert recap.rc == 0 and recap.failed == 0, recap.output[-3000:]
    assert recap.changed == (1 if variables['swap_swappiness'] is None else 2)
    assert os.listdir(host) == [] and read(FSTAB, 'rb') == fstab and live() == swappiness
    assert read(OURS) == ours
    assert '+%s none swap sw 0 0' % os.path.join(host, 'swapfile') in recap.output


def test_converge_again_then_absent(ansible, host):
    if os.path.exists(OURS):
        pytest.skip('%s already exists on this host and the swap role would rewrite it; the tests do not touch '
                    'configuration they did not make' % OURS)
    variables = role_vars(host)
    path = variables['swap_file_path']
    converge = ansible.playbook(PLAYBOOK, extra_vars=variables)
    assert converge.rc == 0 and converge.changed == 2, converge.output[-3000:]
    assert proc_swaps()[path][0] == 32 * 1024 - 4
    assert live() == variables['swap_swappiness']
    assert read(OURS).endswith('vm.swappiness = %d\n' % variables['swap_swappiness'])
    assert ('%s none swap sw 0 0' % path) in read(FSTAB)

    again = ansible.playbook(PLAYBOOK, extra_vars=variables)
    assert again.rc == 0 and again.changed == 0, again.output[-3000:]

    # A new size and priority: the role resizes in place.
    variables.update(swap_size='48M', swap_priority=9)
    resized = ansible.playbook(PLAYBOOK, extra_vars=variables)
    assert resized.rc == 0 and resized.changed == 1, resized.output[-3000:]
    assert proc_swaps()[path] == (48 * 1024 - 4, 0, 9)

    variables['swap_state'] = 'absent'
    absent = ansible.playbook(PLAYBOOK, extra_vars=variables)
    assert absent.rc == 0 and absent.changed == 2, absent.output[-3000:]
    assert path not in proc_swaps() and not os.path.exists(path) and not os.path.exists(OURS)
    assert ansible.playbook(PLAYBOOK, extra_vars=variables).changed == 0


def test_null_swappiness_leaves_swappiness_alone(ansible, host):
    """swap_swappiness: null is documented to leave vm.swappiness and its sysctl.d file alone; the
    role's argument spec used to refuse null (its declared default made None unconvertible)."""
    swappiness, ours = live(), read(OURS)
    variables = role_vars(host, swap_swappiness=None)
    path = variables['swap_file_path']
    converge = ansible.playbook(PLAYBOOK, extra_vars=variables)
    assert converge.rc == 0 and converge.changed == 1, converge.output[-3000:]
    assert path in proc_swaps() and live() == swappiness and read(OURS) == ours
    variables['swap_state'] = 'absent'
    absent = ansible.playbook(PLAYBOOK, extra_vars=variables)
    assert absent.rc == 0 and absent.changed == 1, absent.output[-3000:]
    assert path not in proc_swaps() and live() == swappiness and read(OURS) == ours


def test_bad_variables_fail_with_one_sentence(ansible, host):
    recap = ansible.playbook(PLAYBOOK, extra_vars=role_vars(host, swap_size='lots'))
    assert recap.rc != 0 and recap.failed == 1
    assert "size: cannot read 'lots' as a size" in recap.output
    recap = ansible.playbook(PLAYBOOK, extra_vars=role_vars(host, swap_state='gone'))
    assert recap.rc != 0 and 'swap_state' in recap.output
    assert os.listdir(host) == []


def test_every_input_is_checked_before_the_first_change(ansible, host):
    """issue 15: swap_swappiness 500 used to fail only after the swap file was created, activated and
    added to /etc/fstab. The role now validates everything first."""
    fstab, swappiness, ours, swaps = read(FSTAB, 'rb'), live(), read(OURS), proc_swaps()
    for bad, words in (({'swap_swappiness': 500}, 'value: 500 is out of range'),
                       ({'swap_swappiness': -1}, 'value: -1 is out of range'),
                       ({'swap_priority': 40000}, 'must be between -1 and 32767, got 40000'),
                       ({'swap_reserve': 'most'}, "reserve: cannot read 'most' as a size")):
        recap = ansible.playbook(PLAYBOOK, extra_vars=role_vars(host, **bad))
        assert recap.rc != 0 and recap.failed == 1 and recap.changed == 0, (bad, recap.output[-3000:])
        assert words in recap.output, (bad, recap.output[-3000:])
        assert os.listdir(host) == [], bad
        assert read(FSTAB, 'rb') == fstab and live() == swappiness and read(OURS) == ours and proc_swaps() == swaps


def test_role_documentation_renders():
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-doc'), '-t', 'role',
                           'oomguard.memory.swap'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, env=ansible_env(), check=False)
    assert proc.returncode == 0, proc.stdout
    for name in ('swap_state', 'swap_file_path', 'swap_size', 'swap_priority', 'swap_enabled', 'swap_swappiness',
                 'swap_reserve'):
        assert name in proc.stdout


@pytest.mark.slow
def test_role_skips_inside_a_container(systemd_container):
    swaps_before = proc_swaps()
    swappiness = live()
    recap = systemd_container.playbook(IN_CONTAINER, extra_vars={'swap_file_path': '/swapfile', 'swap_size': '16M',
                                                                 'swap_swappiness': 1})
    assert recap.rc == 0 and recap.changed == 0 and recap.failed == 0, recap.output[-3000:]
    assert recap.skipped == 3, recap.output[-3000:]  # swappiness once in check mode, then both for real
    assert recap.output.count('this host is a podman container') >= 2, recap.output[-3000:]
    assert systemd_container.exec(['test', '-e', '/swapfile'])[0] != 0
    assert proc_swaps() == swaps_before and live() == swappiness
