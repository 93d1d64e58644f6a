"""memory_limit for real on this machine's cgroup v1 memory hierarchy (skipped, with the reason, on a
host without one: the cgroup v2 path is proven in the VM, see tests/README.md), and for systemd units in the
systemd container testbed.

On the host: the module creates a cgroup, sets max, moves a process in; the process over-allocates
and the kernel OOM-kills it, and oom_facts reports that kill with this cgroup as oom_memcg. Also:
refusal below current usage, idempotence after page rounding, check mode, diff, absent, clean up.
In the container: the drop-in is written, daemon-reload runs, and `systemctl show -p MemoryMax`
reports the value. (MemoryMax is written but NOT enforced inside a container: enforcement of
systemd limits needs a real VM and is not claimed here.)
"""
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from kernel import cgroup_layout, v1_memcg_root, vmstat_oom_kill
from testbed import sleep_service


MEMCG_ROOT = v1_memcg_root() or '/sys/fs/cgroup/memory'
RECORD = '/run/oomguard/memory_limit-created'
M = 1024 * 1024
V1_UNLIMITED = 9223372036854771712
# Waits for a line on stdin, then touches 200 MiB (or the size given on the line) page by page.
HOG = ('import sys\n'
       'line = sys.stdin.readline().strip()\n'
       'b = bytearray(int(line or 200) * 1024 * 1024)\n'
       'b[::4096] = b"x" * (len(b) // 4096)\n'
       'sys.stdout.write("allocated\\n"); sys.stdout.flush()\n'
       'sys.stdin.readline()\n')


def read(cgroup, name):
    with open(os.path.join(MEMCG_ROOT, cgroup, name)) as handle:
        return handle.read().strip()


def _remove_cgroup(path):
    """Kill what is inside (children first), then rmdir; True when gone."""
    if not os.path.isdir(path):
        return True
    for entry in os.listdir(path):
        if os.path.isdir(os.path.join(path, entry)):
            _remove_cgroup(os.path.join(path, entry))
    for _attempt in range(50):
        try:
            with open(os.path.join(path, 'cgroup.procs')) as handle:
                pids = [int(p) for p in handle.read().split()]
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.rmdir(path)
            return True
        except OSError:
            time.sleep(0.1)
    return not os.path.isdir(path)


@pytest.fixture
def cgroup():
    """A unique cgroup name below the memory root; whatever the test left is removed afterwards,
    and the module's record of created cgroups is put back as it was."""
    if v1_memcg_root() is None:
        pytest.skip('these tests drive the cgroup v1 memory controller and this host has no v1 memory hierarchy '
                    '(the cgroup v2 path runs in the VM testbed)')
    record_before = open(RECORD).read() if os.path.exists(RECORD) else None
    run_dir_existed = os.path.isdir(os.path.dirname(RECORD))
    name = 'oomguard-test-%s' % uuid.uuid4().hex[:10]
    try:
        yield name
    finally:
        gone = _remove_cgroup(os.path.join(MEMCG_ROOT, name))
        if record_before is None:
            if os.path.exists(RECORD):
                os.unlink(RECORD)
            if not run_dir_existed and os.path.isdir(os.path.dirname(RECORD)):
                os.rmdir(os.path.dirname(RECORD))
        else:
            with open(RECORD, 'w') as handle:
                handle.write(record_before)
        assert gone, 'test cgroup %s could not be removed' % name


@pytest.fixture
def hog():
    """Start python processes that wait for 'go'; all are killed at the end."""
    procs = []

    def start():
        proc = subprocess.Popen([sys.executable, '-c', HOG], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                universal_newlines=True)
        procs.append(proc)
        return proc
    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


@pytest.mark.slow
def test_max_is_enforced_by_a_real_oom_kill_that_oom_facts_reports(ansible, cgroup, hog):
    proc = hog()
    result = ok(ansible.module('oomguard.memory.memory_limit', cgroup=cgroup, create=True, max='64M',
                               swap_max='0', pids=[proc.pid]))
    assert result['changed'] is True and result['created'] is True
    assert result['cgroup_version'] == 'v1' and result['layout'] == cgroup_layout()
    assert result['path'] == os.path.join(MEMCG_ROOT, cgroup)
    assert result['moved_pids'] == [proc.pid]
    # The kernel's own view.
    assert read(cgroup, 'memory.limit_in_bytes') == '%d' % (64 * M)
    assert read(cgroup, 'memory.memsw.limit_in_bytes') == '%d' % (64 * M)
    assert str(proc.pid) in read(cgroup, 'cgroup.procs').split()
    kills_before = vmstat_oom_kill()
    proc.stdin.write('200\n')
    proc.stdin.flush()
    assert proc.wait(60) == -signal.SIGKILL, 'the process should have been OOM-killed inside its 64M cgroup'
    assert vmstat_oom_kill() > kills_before
    assert 'oom_kill 1' in read(cgroup, 'memory.oom_control').splitlines()
    time.sleep(0.2)
    facts = ok(ansible.module('oomguard.memory.oom_facts', sources=['kmsg'], since='boot'))
    events = [e for e in facts['ansible_facts']['oom']['events'] if e['victim'] and e['victim']['pid'] == proc.pid]
    assert len(events) == 1, events
    assert events[0]['oom_memcg'] == '/' + cgroup


@pytest.mark.slow
def test_refuses_a_limit_below_current_usage(ansible, cgroup, hog):
    proc = hog()
    ok(ansible.module('oomguard.memory.memory_limit', cgroup=cgroup, create=True, pids=[proc.pid]))
    proc.stdin.write('100\n')
    proc.stdin.flush()
    assert proc.stdout.readline() == 'allocated\n'
    usage = int(read(cgroup, 'memory.usage_in_bytes'))
    assert usage > 100 * M
    result = ansible.module('oomguard.memory.memory_limit', cgroup=cgroup, max='64M')
    assert result.get('failed') is True
    assert 'refusing to set max=64M' in result['msg'] and 'current usage is' in result['msg']
    assert 'use force: true' in result['msg']
    assert read(cgroup, 'memory.limit_in_bytes') == '%d' % V1_UNLIMITED
    assert proc.poll() is None
    # With force the v1 kernel reclaims, cannot, and refuses: reported, no traceback. The group's own
    # swappiness 0 keeps memcg reclaim from swapping, so an active swapfile on the host cannot make
    # room (what this test needs, created here rather than assumed).
    with open(os.path.join(MEMCG_ROOT, cgroup, 'memory.swappiness'), 'w') as handle:
        handle.write('0\n')
    forced = ansible.module('oomguard.memory.memory_limit', cgroup=cgroup, max='64M', force=True)
    assert forced.get('failed') is True and 'the kernel refused' in forced['msg'], forced.get('msg')
    assert read(cgroup, 'memory.limit_in_bytes') == '%d' % V1_UNLIMITED


def test_idempotent_after_page_rounding_with_check_and_diff(ansible, cgroup):
    args = dict(cgroup=cgroup, create=True, max='100000001', high='50000001')
    predicted = ok(ansible.module('oomguard.memory.memory_limit', check=True, diff=True, **args))
    assert predicted['changed'] is True
    assert not os.path.exists(os.path.join(MEMCG_ROOT, cgroup))
    real = ok(ansible.module('oomguard.memory.memory_limit', diff=True, **args))
    assert real['changed'] is True
    assert predicted['limits'] == real['limits']
    assert real['limits']['max']['after'] == 99999744
    assert read(cgroup, 'memory.limit_in_bytes') == '99999744'
    assert read(cgroup, 'memory.soft_limit_in_bytes') == '49999872'
    assert 'max (memory.limit_in_bytes) = 99999744' in real['diff']['after']
    again = ok(ansible.module('oomguard.memory.memory_limit', **args))
    assert again['changed'] is False
    assert ok(ansible.module('oomguard.memory.memory_limit', check=True, **args))['changed'] is False


def test_swap_max_through_memsw(ansible, cgroup):
    args = dict(cgroup=cgroup, create=True, max='64M', swap_max='32M')
    ok(ansible.module('oomguard.memory.memory_limit', **args))
    assert read(cgroup, 'memory.memsw.limit_in_bytes') == '%d' % (96 * M)
    raised = ok(ansible.module('oomguard.memory.memory_limit', cgroup=cgroup, max='256M', swap_max='0'))
    assert raised['changed'] is True
    assert read(cgroup, 'memory.limit_in_bytes') == '%d' % (256 * M)
    assert read(cgroup, 'memory.memsw.limit_in_bytes') == '%d' % (256 * M)
    assert ok(ansible.module('oomguard.memory.memory_limit', cgroup=cgroup, max='256M', swap_max='0'))['changed'] \
        is False


def test_absent_removes_the_cgroup_it_created(ansible, cgroup):
    ok(ansible.module('oomguard.memory.memory_limit', cgroup=cgroup, create=True, max='64M'))
    check = ok(ansible.module('oomguard.memory.memory_limit', check=True, cgroup=cgroup, state='absent'))
    assert check['changed'] is True and check['removed'] is True
    assert os.path.isdir(os.path.join(MEMCG_ROOT, cgroup))
    gone = ok(ansible.module('oomguard.memory.memory_limit', cgroup=cgroup, state='absent'))
    assert gone['changed'] is True and gone['removed'] is True
    assert not os.path.exists(os.path.join(MEMCG_ROOT, cgroup))
    assert ok(ansible.module('oomguard.memory.memory_limit', cgroup=cgroup, state='absent'))['changed'] is False


def test_absent_lifts_limits_of_a_cgroup_it_did_not_create(ansible, cgroup):
    path = os.path.join(MEMCG_ROOT, cgroup)
    os.mkdir(path)
    with open(os.path.join(path, 'memory.limit_in_bytes'), 'w') as handle:
        handle.write('64M')
    result = ok(ansible.module('oomguard.memory.memory_limit', cgroup=cgroup, state='absent'))
    assert result['changed'] is True and result['removed'] is False
    assert read(cgroup, 'memory.limit_in_bytes') == '%d' % V1_UNLIMITED
    assert os.path.isdir(path)


@pytest.mark.parametrize('args,words', [
    ({'low': '1G'}, 'cgroup v1'),
    ({'oom_group': True}, 'cgroup v1'),
    ({'max': '150%'}, 'more than 100%'),
    ({'max': '64M', 'high': '128M'}, 'above the hard limit max=64M'),
    ({'swap_max': '32M'}, 'give max as well'),
    ({'max': '64M', 'pids': [2]}, 'is a kernel thread'),
])
def test_refusals_leave_the_host_unchanged(ansible, cgroup, args, words):
    result = ansible.module('oomguard.memory.memory_limit', cgroup=cgroup, create=True, **args)
    assert result.get('failed') is True and words in result['msg']
    assert not os.path.exists(os.path.join(MEMCG_ROOT, cgroup))
    assert cgroup not in (open(RECORD).read() if os.path.exists(RECORD) else '')


def test_missing_cgroup_without_create(ansible, cgroup):
    result = ansible.module('oomguard.memory.memory_limit', cgroup=cgroup, max='64M')
    assert result.get('failed') is True and 'use create: true' in result['msg']
    assert not os.path.exists(os.path.join(MEMCG_ROOT, cgroup))


# ---- systemd units, in the systemd container testbed

UNIT = 'oomguard-sleeper.service'
DROPIN = '/etc/systemd/system/%s.d/50-oomguard-memory.conf' % UNIT


def show(box, prop):
    rc, out = box.exec(['systemctl', 'show', '-p', prop, '--value', UNIT])
    assert rc == 0, out
    return out.strip()


@pytest.fixture
def sleeper(systemd_container):
    with sleep_service(systemd_container, UNIT) as box:
        yield box


@pytest.mark.slow
def test_unit_dropin_daemon_reload_and_systemctl_show(sleeper):
    box = sleeper
    assert show(box, 'MemoryMax') == 'infinity'
    args = dict(unit=UNIT, max='256M', high='192M', oom_group=True)
    predicted = box.module('oomguard.memory.memory_limit', check=True, diff=True, **args)
    assert not predicted.get('failed'), predicted.get('msg')
    assert predicted['changed'] is True and predicted['daemon_reload'] is True
    assert box.exec(['test', '-e', DROPIN])[0] != 0
    assert show(box, 'MemoryMax') == 'infinity'
    result = box.module('oomguard.memory.memory_limit', diff=True, **args)
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is True and result['daemon_reload'] is True and result['dropin'] == DROPIN
    assert result['diff'] == predicted['diff']
    rc, text = box.exec(['cat', DROPIN])
    assert rc == 0 and '[Service]\nMemoryMax=256M\nMemoryHigh=192M\nOOMPolicy=kill\n' in text
    # systemd's own view after the reload (written, not enforced: this is a container).
    assert show(box, 'MemoryMax') == '%d' % (256 * M)
    assert show(box, 'MemoryHigh') == '%d' % (192 * M)
    assert show(box, 'OOMPolicy') == 'kill'
    assert show(box, 'NeedDaemonReload') == 'no'
    again = box.module('oomguard.memory.memory_limit', **args)
    assert again['changed'] is False and again['daemon_reload'] is False
    gone = box.module('oomguard.memory.memory_limit', unit=UNIT, state='absent')
    assert gone['changed'] is True and gone['daemon_reload'] is True
    assert box.exec(['test', '-e', DROPIN])[0] != 0
    assert show(box, 'MemoryMax') == 'infinity'


@pytest.mark.slow
def test_unit_runtime_only_and_refusal(sleeper):
    box = sleeper
    result = box.module('oomguard.memory.memory_limit', unit=UNIT, persist=False, max='128M')
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is True and result['dropin'] is None
    assert show(box, 'MemoryMax') == '%d' % (128 * M)
    assert box.exec(['test', '-e', DROPIN])[0] != 0
    again = box.module('oomguard.memory.memory_limit', unit=UNIT, persist=False, max='128M')
    assert again['changed'] is False
    bad = box.module('oomguard.memory.memory_limit', unit=UNIT, max='1G', low='2G')
    assert bad.get('failed') is True and 'above the hard limit' in bad['msg']
    assert box.exec(['test', '-e', DROPIN])[0] != 0
    reset = box.module('oomguard.memory.memory_limit', unit=UNIT, persist=False, state='absent')
    assert reset['changed'] is True
    assert show(box, 'MemoryMax') == 'infinity'
