"""The memory_limits role for real: raw cgroups on this machine's cgroup v1 memory hierarchy (skipped,
with the reason, on hosts without one; the VM testbed covers cgroup v2), and
systemd units in the systemd container testbed (drop-in + daemon-reload; `systemctl show` reports
the values; MemoryMax is not enforced inside a container and that is not claimed here)."""
import os
import time
import uuid

import pytest

from kernel import v1_memcg_root
from testbed import sleep_service


PLAYBOOK = os.path.join('tests', 'integration', 'playbooks', 'memory_limits_role.yml')
MEMCG_ROOT = v1_memcg_root() or '/sys/fs/cgroup/memory'
RECORD = '/run/oomguard/memory_limit-created'
M = 1024 * 1024


def read(cgroup, name):
    with open(os.path.join(MEMCG_ROOT, cgroup, name)) as handle:
        return handle.read().strip()


@pytest.fixture
def names():
    """Two unique cgroup names; removed afterwards (and the module's record put back)."""
    if v1_memcg_root() is None:
        pytest.skip('these tests drive the cgroup v1 memory controller and this host has no v1 memory hierarchy')
    record_before = open(RECORD).read() if os.path.exists(RECORD) else None
    run_dir_existed = os.path.isdir(os.path.dirname(RECORD))
    tag = uuid.uuid4().hex[:10]
    made = ['oomguard-test-%s-a' % tag, 'oomguard-test-%s-b' % tag]
    try:
        yield made
    finally:
        left = []
        for name in made:
            path = os.path.join(MEMCG_ROOT, name)
            for _attempt in range(50):
                if not os.path.isdir(path):
                    break
                try:
                    os.rmdir(path)
                except OSError:
                    time.sleep(0.1)
            if os.path.isdir(path):
                left.append(path)
        if record_before is None:
            if os.path.exists(RECORD):
                os.unlink(RECORD)
            if not run_dir_existed and os.path.isdir(os.path.dirname(RECORD)):
                os.rmdir(os.path.dirname(RECORD))
        else:
            with open(RECORD, 'w') as handle:
                handle.write(record_before)
        assert not left, 'test cgroups left behind: %s' % left


def test_role_on_raw_cgroups(ansible, names):
    first, second = names
    cgroups = [{'cgroup': first, 'create': True, 'max': '64M', 'high': '32M'},
               {'cgroup': second, 'create': True, 'max': '100000001', 'swap_max': '0'}]
    extra = {'memory_limits_cgroups': cgroups}
    check = ansible.playbook(PLAYBOOK, check=True, extra_vars=extra)
    assert check.rc == 0, check.output[-3000:]
    assert check.changed == 1 and check.failed == 0
    assert not os.path.exists(os.path.join(MEMCG_ROOT, first))
    assert not os.path.exists(os.path.join(MEMCG_ROOT, second))

    converge = ansible.playbook(PLAYBOOK, extra_vars=extra)
    assert converge.rc == 0, converge.output[-3000:]
    assert converge.changed == 1 and converge.failed == 0
    assert read(first, 'memory.limit_in_bytes') == '%d' % (64 * M)
    assert read(first, 'memory.soft_limit_in_bytes') == '%d' % (32 * M)
    assert read(second, 'memory.limit_in_bytes') == '99999744'
    assert read(second, 'memory.memsw.limit_in_bytes') == '99999744'

    again = ansible.playbook(PLAYBOOK, extra_vars=extra)
    assert again.rc == 0 and again.changed == 0, again.output[-3000:]

    absent = ansible.playbook(PLAYBOOK, extra_vars={'memory_limits_cgroups': [
        {'cgroup': first, 'state': 'absent'}, {'cgroup': second, 'state': 'absent'}]})
    assert absent.rc == 0 and absent.changed == 1, absent.output[-3000:]
    assert not os.path.exists(os.path.join(MEMCG_ROOT, first))
    assert not os.path.exists(os.path.join(MEMCG_ROOT, second))


def test_role_refuses_v2_only_limits_on_v1(ansible, names):
    recap = ansible.playbook(PLAYBOOK, extra_vars={'memory_limits_cgroups': [
        {'cgroup': names[0], 'create': True, 'low': '1G'}]})
    assert recap.rc != 0 and recap.failed == 1
    assert 'cgroup v1, which has no memory.low' in recap.output
    assert not os.path.exists(os.path.join(MEMCG_ROOT, names[0]))


def test_a_bad_item_fails_before_the_first_change(ansible, names):
    """issue 15: the first item's cgroup used to be created before the second item failed."""
    first, second = names
    recap = ansible.playbook(PLAYBOOK, extra_vars={'memory_limits_cgroups': [
        {'cgroup': first, 'create': True, 'max': '64M'}, {'cgroup': second, 'create': True, 'low': '1G'}]})
    assert recap.rc != 0 and recap.failed == 1 and recap.changed == 0, recap.output[-3000:]
    assert 'cgroup v1, which has no memory.low' in recap.output
    assert not os.path.exists(os.path.join(MEMCG_ROOT, first))
    assert not os.path.exists(os.path.join(MEMCG_ROOT, second))


def test_task_names_need_no_loop_item(ansible):
    """issue 15: task names templated from {{ item.* }} printed "'item' is undefined" warnings on
    every run under ansible-core 2.19 and later (the names are rendered outside the loop)."""
    recap = ansible.playbook(PLAYBOOK, extra_vars={'memory_limits_units': [], 'memory_limits_cgroups': []})
    assert recap.rc == 0 and recap.changed == 0, recap.output[-3000:]
    assert 'WARNING' not in recap.output and 'is undefined' not in recap.output, recap.output[-3000:]


def test_role_rejects_unknown_item_keys_through_argument_specs(ansible):
    recap = ansible.playbook(PLAYBOOK, extra_vars={'memory_limits_units': [{'unit': 'x.service', 'maxx': '1G'}]})
    assert recap.rc != 0 and 'maxx' in recap.output


UNIT = 'oomguard-role-sleeper.service'
SLICE = 'oomguard-role-test.slice'


@pytest.fixture
def units(systemd_container):
    with sleep_service(systemd_container, UNIT, also_remove=(SLICE,)) as box:
        yield box


def show(box, unit, prop):
    rc, out = box.exec(['systemctl', 'show', '-p', prop, '--value', unit])
    assert rc == 0, out
    return out.strip()


@pytest.mark.slow
def test_role_on_units_in_the_systemd_container(units):
    box = units
    extra = {'memory_limits_units': [{'unit': UNIT, 'max': '256M', 'swap_max': '0', 'oom_group': True},
                                     {'unit': SLICE, 'max': '1G', 'low': '128M'}]}
    check = box.playbook(PLAYBOOK, check=True, extra_vars=extra)
    assert check.rc == 0 and check.changed == 1, check.output[-3000:]
    assert show(box, UNIT, 'MemoryMax') == 'infinity'
    assert box.exec(['test', '-e', '/etc/systemd/system/%s.d' % UNIT])[0] != 0

    converge = box.playbook(PLAYBOOK, extra_vars=extra)
    assert converge.rc == 0 and converge.changed == 1, converge.output[-3000:]
    assert show(box, UNIT, 'MemoryMax') == '%d' % (256 * M)
    assert show(box, UNIT, 'MemorySwapMax') == '0'
    assert show(box, UNIT, 'OOMPolicy') == 'kill'
    assert show(box, SLICE, 'MemoryMax') == '%d' % (1024 * M)
    assert show(box, SLICE, 'MemoryLow') == '%d' % (128 * M)

    again = box.playbook(PLAYBOOK, extra_vars=extra)
    assert again.rc == 0 and again.changed == 0, again.output[-3000:]

    absent = box.playbook(PLAYBOOK, extra_vars={'memory_limits_units': [
        {'unit': UNIT, 'state': 'absent'}, {'unit': SLICE, 'state': 'absent'}]})
    assert absent.rc == 0 and absent.changed == 1, absent.output[-3000:]
    assert show(box, UNIT, 'MemoryMax') == 'infinity'
    assert show(box, SLICE, 'MemoryMax') == 'infinity'
