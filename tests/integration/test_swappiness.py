"""oomguard.memory.swappiness for real: the running kernel's /proc/sys/vm/swappiness and the real
/etc/sysctl.d. The ``saved`` fixture puts the live value, the file the test lets the module own and
the test's conflict file back as they were, also when a test fails.

A host that already carries the module's default file (an earlier `make run APPLY=1`, an admin)
keeps it untouched: the tests then give the module a file of their own (O(sysctl_file)) that sorts
right after it."""
import glob
import os

import pytest

from kernel import swappiness_max

MODULE = 'oomguard.memory.swappiness'
LIVE = '/proc/sys/vm/swappiness'
OURS = '/etc/sysctl.d/90-oomguard-swappiness.conf'
TEST_OWNED = '/etc/sysctl.d/91-oomguard-it-swappiness.conf'
CONFLICT = '/etc/sysctl.d/99-zz-oomguard-it-conflict.conf'
SYSCTL_DIRS = ('/etc/sysctl.d', '/run/sysctl.d', '/usr/local/lib/sysctl.d', '/usr/lib/sysctl.d', '/lib/sysctl.d')


def live():
    with open(LIVE) as handle:
        return int(handle.read())


def read(path):
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return handle.read()


def later_setters(name):
    """Files of the host that systemd-sysctl applies after sysctl.d file ``name`` and that set
    vm.swappiness (they would make the module's boot value theirs)."""
    found = []
    for directory in SYSCTL_DIRS:
        for path in glob.glob(os.path.join(directory, '*.conf')):
            base = os.path.basename(path)
            if base > name and base != os.path.basename(CONFLICT) and 'vm.swappiness' in (read(path) or ''):
                found.append(path)
    if os.path.exists('/etc/sysctl.conf') and 'vm.swappiness' in read('/etc/sysctl.conf').replace(' ', ''):
        found.append('/etc/sysctl.conf')
    return found


@pytest.fixture
def owned():
    """The sysctl.d file the tests let the module own: the default unless the host already has it."""
    path = OURS if not os.path.exists(OURS) else TEST_OWNED
    if os.path.exists(path):
        pytest.skip('%s already exists on this host; the tests do not touch configuration they did not make' % path)
    later = later_setters(os.path.basename(path))
    if later:
        pytest.skip('%s set vm.swappiness after %s on this host, so the boot value could not be ours'
                    % (', '.join(sorted(later)), path))
    return path


@pytest.fixture
def saved(owned):
    before = live()
    files = {path: read(path) for path in (OURS, owned, CONFLICT)}
    try:
        yield before
    finally:
        with open(LIVE, 'w') as handle:
            handle.write('%d\n' % before)
        for path, text in files.items():
            if text is None:
                if os.path.exists(path):
                    os.unlink(path)
            elif read(path) != text:
                with open(path, 'w') as handle:
                    handle.write(text)
    assert live() == before
    assert {path: read(path) for path in files} == files


def test_applied_persisted_idempotent_and_absent(ansible, saved, owned):
    value = 17 if saved != 17 else 18
    result = ansible.module(MODULE, value=value, sysctl_file=owned)
    assert result['changed'] is True and result['previous'] == saved
    assert live() == value
    assert read(owned).endswith('vm.swappiness = %d\n' % value)
    assert result['boot_value'] == value and result['file'] == owned and result['overridden_by'] is None
    assert ansible.module(MODULE, value=value, sysctl_file=owned)['changed'] is False

    predicted = ansible.module(MODULE, check=True, diff=True, value=value + 1, sysctl_file=owned)
    assert predicted['changed'] is True and predicted['value'] == value + 1
    assert live() == value and read(owned).endswith('= %d\n' % value), 'check mode changed the host'

    removed = ansible.module(MODULE, state='absent', sysctl_file=owned)
    assert removed['changed'] is True and removed['file'] is None
    assert not os.path.exists(owned) and live() == value
    assert ansible.module(MODULE, state='absent', sysctl_file=owned)['changed'] is False


def test_the_kernel_range_is_checked_against_this_kernel(ansible, saved, owned):
    # The kernel's own maximum, probed by writing to it (200 since Linux 5.8, 100 before).
    top = swappiness_max()
    files_before = {path: read(path) for path in (OURS, owned)}
    result = ansible.module(MODULE, value=top, persist=False, sysctl_file=owned)
    assert result['changed'] is True and live() == top
    refused = ansible.module(MODULE, value=top + 1, persist=False, sysctl_file=owned)
    assert refused.get('failed') is True and 'from 0 to %d' % top in refused['msg'] and live() == top
    assert {path: read(path) for path in (OURS, owned)} == files_before, 'persist: false wrote a file'


def test_conflict_is_detected_and_named(ansible, saved, owned):
    with open(CONFLICT, 'w') as handle:
        handle.write('vm.swappiness = 33\n')
    result = ansible.module(MODULE, value=12, sysctl_file=owned)
    assert result['changed'] is True and live() == 12
    assert result['overridden_by'] == CONFLICT and result['boot_value'] == 33
    assert any(CONFLICT in warning for warning in result.get('warnings', [])), result
    os.unlink(owned)
    with open(LIVE, 'w') as handle:
        handle.write('%d\n' % saved)
    failed = ansible.module(MODULE, value=12, on_conflict='fail', sysctl_file=owned)
    assert failed.get('failed') is True and failed['msg'].startswith('%s sets vm.swappiness = 33' % CONFLICT)
    assert live() == saved and not os.path.exists(owned), 'a failed conflict check changed the host'
