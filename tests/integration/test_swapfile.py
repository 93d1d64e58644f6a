"""oomguard.memory.swapfile for real on this machine: the kernel's /proc/swaps is the judge.

Every test works in its own directory under /var/tmp with small files. The ``host`` fixture saves
/etc/fstab (bytes) and, whatever happens, swaps off and deletes every file under that directory,
unmounts what the test mounted and puts /etc/fstab back byte for byte.
"""
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from harness import ansible_env

MIB = 1024 ** 2
FSTAB = '/etc/fstab'
MODULE = 'oomguard.memory.swapfile'
FIXTURES = os.path.join(os.path.dirname(__file__), '..', 'unit', 'fixtures', 'swap')


def proc_swaps():
    """{path: (size_kb, used_kb, priority)} as the kernel sees it."""
    with open('/proc/swaps') as handle:
        lines = handle.read().splitlines()[1:]
    return {f[0]: (int(f[2]), int(f[3]), int(f[4])) for f in (line.split() for line in lines)}


def read_bytes(path):
    with open(path, 'rb') as handle:
        return handle.read()


class Host(object):
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='oomguard-it-swap-', dir='/var/tmp')
        self.fstab = read_bytes(FSTAB)
        self.mounts = []

    def path(self, name):
        return os.path.join(self.dir, name)

    def mount(self, *argv):
        point = argv[-1]
        subprocess.run(['mount'] + list(argv), check=True)
        self.mounts.append(point)

    def restore(self):
        for path in list(proc_swaps()):
            if path.startswith(self.dir + '/'):
                subprocess.run(['swapoff', path], check=False)
        for point in reversed(self.mounts):
            subprocess.run(['umount', point], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        if read_bytes(FSTAB) != self.fstab:
            with open(FSTAB, 'wb') as handle:
                handle.write(self.fstab)


@pytest.fixture
def host():
    guard = Host()
    try:
        yield guard
    finally:
        guard.restore()
    assert not [p for p in proc_swaps() if p.startswith(guard.dir)], 'a test swap file is still active'
    assert read_bytes(FSTAB) == guard.fstab


def cli(*args):
    """argv for the ansible ad-hoc command running the module with key=value args."""
    return [os.path.join(os.path.dirname(sys.executable), 'ansible'), 'localhost', '-c', 'local', '-i', 'localhost,',
            '-m', MODULE, '-a', ' '.join(args)]


def test_lifecycle_create_again_resize_priority_absent(ansible, host):
    path = host.path('swap')
    created = ansible.module(MODULE, path=path, size='32M')
    assert created['changed'] is True, created
    # The kernel reports the size minus the header page.
    assert proc_swaps()[path][0] == 32 * 1024 - 4
    info = os.stat(path)
    assert stat.S_IMODE(info.st_mode) == 0o600 and (info.st_uid, info.st_gid) == (0, 0)
    assert info.st_blocks * 512 >= 32 * MIB, 'the swap file has holes'
    assert read_bytes(FSTAB) == host.fstab + ('%s none swap sw 0 0\n' % path).encode()
    assert created['fstab_line'] == '%s none swap sw 0 0' % path and created['active'] is True

    again = ansible.module(MODULE, path=path, size='32M')
    assert again['changed'] is False and again['actions'] == []
    again = ansible.module(MODULE, path=path, size=str(32 * MIB))
    assert again['changed'] is False, 'the same size written in bytes must not rebuild'

    predicted = ansible.module(MODULE, check=True, diff=True, path=path, size='48M', priority=7)
    assert predicted['changed'] is True
    assert predicted['actions'] == ['swapoff %s (to resize it)' % path, 'resize %s (48M, fallocate)' % path,
                                    'mkswap %s' % path, 'swapon %s -p 7' % path, 'update %s in /etc/fstab' % path]
    assert proc_swaps()[path][0] == 32 * 1024 - 4, 'check mode changed the swap file'
    assert 'size: 48M' in predicted['diff'][0]['after']

    resized = ansible.module(MODULE, path=path, size='48M', priority=7)
    assert resized['actions'] == predicted['actions']
    assert proc_swaps()[path] == (48 * 1024 - 4, 0, 7)
    assert resized['fstab_line'] == '%s none swap sw,pri=7 0 0' % path

    repriority = ansible.module(MODULE, path=path, size='48M', priority=3)
    assert repriority['actions'] == ['swapoff %s (to change its priority to 3)' % path, 'swapon %s -p 3' % path,
                                     'update %s in /etc/fstab' % path]
    assert proc_swaps()[path][2] == 3

    os.chmod(path, 0o644)
    fixed = ansible.module(MODULE, path=path, size='48M', priority=3)
    assert fixed['actions'] == ['chmod 0600 %s (was 0644)' % path]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    subprocess.run(['swapoff', path], check=True)
    reactivated = ansible.module(MODULE, path=path, size='48M', priority=3)
    assert reactivated['actions'] == ['swapon %s -p 3' % path] and proc_swaps()[path][2] == 3

    check_absent = ansible.module(MODULE, check=True, path=path, state='absent')
    assert check_absent['changed'] is True and path in proc_swaps() and os.path.exists(path)

    removed = ansible.module(MODULE, path=path, state='absent')
    assert removed['actions'] == ['swapoff %s (to remove it)' % path, 'remove %s from /etc/fstab' % path,
                                  'delete %s' % path]
    assert path not in proc_swaps() and not os.path.exists(path)
    assert read_bytes(FSTAB) == host.fstab
    assert ansible.module(MODULE, path=path, state='absent')['changed'] is False


def test_check_mode_on_nothing_changes_nothing(ansible, host):
    path = host.path('swap')
    result = ansible.module(MODULE, check=True, path=path, size='16M')
    assert result['changed'] is True and result['size_bytes'] == 16 * MIB
    assert not os.listdir(host.dir) and path not in proc_swaps() and read_bytes(FSTAB) == host.fstab


def test_dd_method_builds_a_usable_file(ansible, host):
    path = host.path('dd')
    result = ansible.module(MODULE, path=path, size='16M', method='dd', fstab=False)
    assert result['actions'][0] == 'create %s (16M, dd)' % path
    assert proc_swaps()[path][0] == 16 * 1024 - 4 and result['fstab_line'] is None
    assert read_bytes(FSTAB) == host.fstab


def test_not_enough_space_on_a_small_ext4(ansible, host):
    image = host.path('disk.img')
    with open(image, 'wb') as handle:
        handle.truncate(64 * MIB)
    subprocess.run(['mkfs.ext4', '-q', '-F', image], check=True)
    point = host.path('mnt')
    os.mkdir(point)
    host.mount('-o', 'loop', image, point)
    result = ansible.module(MODULE, path=os.path.join(point, 'swap'), size='60M')
    assert result.get('failed') is True
    assert result['msg'].startswith('not enough space for a 60M swap file at %s/swap' % point)
    assert 'free on %s (ext4)' % point in result['msg']
    assert sorted(os.listdir(point)) == ['lost+found'], 'a byte was written before the space check'
    # With room, the same small filesystem takes a swap file.
    fits = ansible.module(MODULE, path=os.path.join(point, 'swap'), size='16M', fstab=False)
    # On a 1 KiB-block ext4 the kernel may leave out a few pages that are not page-aligned on disk.
    assert fits['changed'] is True and 15 * 1024 < proc_swaps()[os.path.join(point, 'swap')][0] <= 16 * 1024 - 4
    subprocess.run(['swapoff', os.path.join(point, 'swap')], check=True)


def test_tmpfs_is_refused_and_the_kernel_agrees(ansible, host):
    point = host.path('tmpfs')
    os.mkdir(point)
    host.mount('-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', point)
    result = ansible.module(MODULE, path=os.path.join(point, 'swap'), size='8M')
    assert result.get('failed') is True
    assert 'it is on tmpfs (mounted at %s)' % point in result['msg']
    assert os.listdir(point) == []
    # The refusal is the kernel's rule too: swapon of a file on tmpfs fails.
    probe = os.path.join(point, 'probe')
    subprocess.run(['dd', 'if=/dev/zero', 'of=%s' % probe, 'bs=1M', 'count=8', 'status=none'], check=True)
    os.chmod(probe, 0o600)
    subprocess.run(['mkswap', probe], check=True, stdout=subprocess.DEVNULL)
    assert subprocess.run(['swapon', probe], stderr=subprocess.DEVNULL, check=False).returncode != 0


def test_symlink_and_existing_data_are_refused(ansible, host):
    target = host.path('target')
    with open(target, 'w') as handle:
        handle.write('important data\n')
    link = host.path('link')
    os.symlink(target, link)
    result = ansible.module(MODULE, path=link, size='16M')
    assert result.get('failed') is True and 'it is a symlink' in result['msg']
    result = ansible.module(MODULE, path=target, size='16M')
    assert result.get('failed') is True and 'not a swap area' in result['msg']
    with open(target) as handle:
        assert handle.read() == 'important data\n'
    assert read_bytes(FSTAB) == host.fstab and not [p for p in proc_swaps() if p.startswith(host.dir)]


def module_process(args):
    """Start the installed module directly (no Ansible in between), in its own process group, so that
    SIGKILL to the group reaches the module and its dd at once."""
    env = ansible_env()
    env['PYTHONPATH'] = env['ANSIBLE_COLLECTIONS_PATH'].split(':')[0]
    handle = tempfile.NamedTemporaryFile('w', suffix='.json', delete=False)
    with handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    argv = [sys.executable, '-m', 'ansible_collections.oomguard.memory.plugins.modules.swapfile', handle.name]
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True), handle.name


def test_killed_mid_creation_then_rerun_cleans_up(ansible, host):
    path = host.path('swap')
    tmp = os.path.join(host.dir, '.swap.oomguard-swap-tmp')
    # dd writes about 256 MiB/s here: 4 GiB gives seconds to kill it halfway.
    proc, args_file = module_process({'path': path, 'size': '4G', 'method': 'dd', 'reserve': '1G'})
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.exists(tmp) and os.path.getsize(tmp) > 16 * MIB:
                break
            assert proc.poll() is None, 'the run ended before it could be killed'
            time.sleep(0.05)
        else:
            pytest.fail('the temporary file never grew')
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.unlink(args_file)
    assert proc.returncode == -signal.SIGKILL
    # What a crash leaves: a half-written temporary file, nothing active, no fstab line.
    assert os.path.exists(tmp) and not os.path.exists(path)
    assert not [p for p in proc_swaps() if p.startswith(host.dir)]
    assert read_bytes(FSTAB) == host.fstab
    rerun = ansible.module(MODULE, path=path, size='16M')
    assert rerun['actions'][0] == 'remove leftover %s' % tmp
    assert not os.path.exists(tmp) and proc_swaps()[path][0] == 16 * 1024 - 4


def test_two_runs_at_once_make_one_swap_file(host):
    path = host.path('swap')
    # stdin from /dev/null: Ansible's workers detach from stdio and fail on a closed descriptor.
    procs = [subprocess.Popen(cli('path=%s' % path, 'size=64M', 'method=dd'), env=ansible_env(),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
             for _run in range(2)]
    outputs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sorted('CHANGED' in out for out in outputs) == [False, True], outputs
    assert proc_swaps()[path][0] == 64 * 1024 - 4
    assert read_bytes(FSTAB).count(path.encode()) == 1
    assert not os.path.exists(os.path.join(host.dir, '.swap.oomguard-swap-tmp'))


def test_fstab_with_odd_formatting_keeps_every_other_byte(ansible, host):
    with open(os.path.join(FIXTURES, 'fstab-odd'), 'rb') as handle:
        odd = host.fstab + handle.read()
    odd = odd.rstrip(b'\n') + b'\n/dev/sdc1\t\t/srv   ext4  defaults 0 2'  # no final newline
    with open(FSTAB, 'wb') as handle:
        handle.write(odd)
    path = host.path('swap')
    ansible.module(MODULE, path=path, size='16M')
    assert read_bytes(FSTAB) == odd + ('\n%s none swap sw 0 0' % path).encode()
    ansible.module(MODULE, path=path, size='16M', priority=4)
    assert read_bytes(FSTAB) == odd + ('\n%s none swap sw,pri=4 0 0' % path).encode()
    ansible.module(MODULE, path=path, state='absent')
    assert read_bytes(FSTAB) == odd


@pytest.mark.parametrize('fstype, image_mib, mkfs', [
    ('btrfs', 256, ['mkfs.btrfs', '-q', '-f']),
    ('xfs', 320, ['mkfs.xfs', '-q', '-f']),
])
def test_swap_file_on_other_filesystems(ansible, host, fstype, image_mib, mkfs):
    if shutil.which(mkfs[0]) is None:
        pytest.skip('%s is not installed (apt-get install %s)' % (mkfs[0], 'btrfs-progs' if fstype == 'btrfs'
                                                                  else 'xfsprogs'))
    image = host.path('%s.img' % fstype)
    with open(image, 'wb') as handle:
        handle.truncate(image_mib * MIB)
    subprocess.run(mkfs + [image], check=True, stdout=subprocess.DEVNULL)
    point = host.path(fstype)
    os.mkdir(point)
    host.mount('-o', 'loop', image, point)
    path = os.path.join(point, 'swap')
    result = ansible.module(MODULE, path=path, size='32M', fstab=False)
    assert result.get('failed') is not True, result.get('msg')
    assert result['actions'][0] == 'create %s (32M, fallocate)' % path
    # The kernel takes it: on btrfs only if the file is no-copy-on-write and unfragmented enough.
    assert proc_swaps()[path][0] == 32 * 1024 - 4
    if fstype == 'btrfs':
        attrs = subprocess.run(['lsattr', path], stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
        assert 'C' in attrs.split()[0], attrs
    assert ansible.module(MODULE, path=path, size='32M', fstab=False)['changed'] is False
    removed = ansible.module(MODULE, path=path, state='absent', fstab=False)
    assert removed['changed'] is True and not os.path.exists(path) and path not in proc_swaps()


def test_path_through_a_symlinked_directory_is_recognised_as_active(ansible, host):
    real = host.path('real')
    os.mkdir(real)
    os.symlink(real, host.path('via'))
    path = os.path.join(host.path('via'), 'swap')
    assert ansible.module(MODULE, path=path, size='16M', fstab=False)['changed'] is True
    # The kernel lists the resolved path; the module must still see its file as active.
    assert os.path.join(real, 'swap') in proc_swaps()
    again = ansible.module(MODULE, path=path, size='16M', fstab=False)
    assert again['changed'] is False and again['active'] is True
    assert ansible.module(MODULE, path=path, state='absent', fstab=False)['changed'] is True
    assert os.path.join(real, 'swap') not in proc_swaps()


GIB = 1024 ** 3
# docs/swap.md "Size auto", row by row (RAM below -> swap size); the unit tests pin the boundaries.
AUTO_TABLE = (
    (2 * GIB, lambda ram: -(-2 * ram // MIB) * MIB),
    (8 * GIB, lambda ram: 4 * GIB),
    (64 * GIB, lambda ram: -(-(ram // 2) // MIB) * MIB),
    (None, lambda ram: 32 * GIB),
)


def test_auto_size_follows_this_hosts_ram_in_check_mode(ansible, host):
    with open('/proc/meminfo') as handle:
        mem_total = int(next(line for line in handle if line.startswith('MemTotal:')).split()[1]) * 1024
    expected = next(size(mem_total) for below, size in AUTO_TABLE if below is None or mem_total < below)
    vfs = os.statvfs(host.dir)
    free, total = vfs.f_bavail * vfs.f_frsize, vfs.f_blocks * vfs.f_frsize
    expected = min(expected, (free - total // 10) // MIB * MIB)
    result = ansible.module(MODULE, check=True, path=host.path('auto'), size='auto')
    assert result['changed'] is True and result['size_bytes'] == expected
    assert os.listdir(host.dir) == []


@pytest.fixture
def immutable_fstab(host):
    """/etc/fstab made immutable (chattr +i) for the test, and mutable again whatever happens.
    Skipped where the filesystem of /etc has no immutable flag."""
    if subprocess.run(['chattr', '+i', FSTAB], stderr=subprocess.DEVNULL, check=False).returncode != 0:
        pytest.skip('chattr +i %s is not supported here' % FSTAB)
    try:
        yield FSTAB
    finally:
        subprocess.run(['chattr', '-i', FSTAB], check=True)


def test_immutable_fstab_refuses_create_before_any_change(ansible, host, immutable_fstab):
    path = host.path('swap')
    result = ansible.module(MODULE, path=path, size='16M')
    assert result.get('failed') is True
    assert result['msg'] == ('refusing to change swap file %s: /etc/fstab must be updated (add) but /etc/fstab is '
                             'immutable (chattr +i; lsattr shows the i flag); remove the flag with chattr -i '
                             '/etc/fstab if the change is intended; nothing was changed' % path)
    assert os.listdir(host.dir) == [] and path not in proc_swaps() and read_bytes(FSTAB) == host.fstab


def test_immutable_fstab_refuses_absent_and_leaves_swap_as_it_was(ansible, host):
    path = host.path('swap')
    assert ansible.module(MODULE, path=path, size='16M')['changed'] is True
    with_entry = read_bytes(FSTAB)
    subprocess.run(['chattr', '+i', FSTAB], check=True)
    try:
        result = ansible.module(MODULE, path=path, state='absent')
    finally:
        subprocess.run(['chattr', '-i', FSTAB], check=True)
    assert result.get('failed') is True and result['msg'].endswith('nothing was changed')
    assert 'must be updated (remove)' in result['msg']
    assert path in proc_swaps() and os.path.exists(path) and read_bytes(FSTAB) == with_entry
    assert ansible.module(MODULE, path=path, state='absent')['changed'] is True


def test_long_legal_path_and_nul_byte(ansible, host):
    path = host.path('s' * 250)
    created = ansible.module(MODULE, path=path, size='16M', fstab=False)
    assert created['changed'] is True, created
    assert path in proc_swaps()
    subprocess.run(['swapoff', path], check=True)
    bad = ansible.module(MODULE, path=host.path('a\x00b'), size='16M')
    assert bad.get('failed') is True and 'Traceback' not in bad['msg'] and '\n' not in bad['msg']
    assert sorted(os.listdir(host.dir)) == [os.path.basename(path)]
