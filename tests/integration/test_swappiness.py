"""oomguard.memory.swappiness for real: the running kernel's /proc/sys/vm/swappiness and the real
/etc/sysctl.d. The ``saved`` fixture puts the live value, our sysctl.d file and the test's conflict
file back as they were, also when a test fails."""
import os

import pytest

MODULE = 'oomguard.memory.swappiness'
LIVE = '/proc/sys/vm/swappiness'
OURS = '/etc/sysctl.d/90-oomguard-swappiness.conf'
CONFLICT = '/etc/sysctl.d/99-zz-oomguard-it-conflict.conf'


def live():
    with open(LIVE) as handle:
        return int(handle.read())


def read(path):
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return handle.read()


@pytest.fixture
def saved():
    before = live()
    files = {path: read(path) for path in (OURS, CONFLICT)}
    try:
        yield before
    finally:
        with open(LIVE, 'w') as handle:
            handle.write('%d\n' % before)
        for path, text in files.items():
            if text is None:
                if os.path.exists(path):
                    os.unlink(path)
            else:
                with open(path, 'w') as handle:
                    handle.write(text)
    assert live() == before


def test_applied_persisted_idempotent_and_absent(ansible, saved):
    value = 17 if saved != 17 else 18
    result = ansible.module(MODULE, value=value)
    assert result['changed'] is True and result['previous'] == saved
    assert live() == value
    assert read(OURS).endswith('vm.swappiness = %d\n' % value)
    assert result['boot_value'] == value and result['file'] == OURS and result['overridden_by'] is None
    assert ansible.module(MODULE, value=value)['changed'] is False

    predicted = ansible.module(MODULE, check=True, diff=True, value=value + 1)
    assert predicted['changed'] is True and predicted['value'] == value + 1
    assert live() == value and read(OURS).endswith('= %d\n' % value), 'check mode changed the host'

    removed = ansible.module(MODULE, state='absent')
    assert removed['changed'] is True and removed['file'] is None
    assert not os.path.exists(OURS) and live() == value
    assert ansible.module(MODULE, state='absent')['changed'] is False


def test_the_kernel_range_is_checked_against_this_kernel(ansible, saved):
    # Linux 6.x accepts up to 200; the module knows it and the kernel agrees.
    result = ansible.module(MODULE, value=200, persist=False)
    assert result['changed'] is True and live() == 200
    refused = ansible.module(MODULE, value=201, persist=False)
    assert refused.get('failed') is True and 'from 0 to 200' in refused['msg'] and live() == 200
    assert not os.path.exists(OURS)


def test_conflict_is_detected_and_named(ansible, saved):
    with open(CONFLICT, 'w') as handle:
        handle.write('vm.swappiness = 33\n')
    result = ansible.module(MODULE, value=12)
    assert result['changed'] is True and live() == 12
    assert result['overridden_by'] == CONFLICT and result['boot_value'] == 33
    assert any(CONFLICT in warning for warning in result.get('warnings', [])), result
    os.unlink(OURS)
    with open(LIVE, 'w') as handle:
        handle.write('%d\n' % saved)
    failed = ansible.module(MODULE, value=12, on_conflict='fail')
    assert failed.get('failed') is True and failed['msg'].startswith('%s sets vm.swappiness = 33' % CONFLICT)
    assert live() == saved and not os.path.exists(OURS), 'a failed conflict check changed the host'
