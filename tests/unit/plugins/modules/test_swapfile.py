"""swapfile planning and refusals on fake /proc trees (no swapon here: that is the integration suite's job).

Each test builds /proc/swaps, /proc/meminfo and /proc/mounts under tmp_path and points the module's
PROC_ROOT, FSTAB and HOST_ROOT constants at it; real files are created only under tmp_path.
"""
import os
import shutil

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import swap
from ansible_collections.oomguard.memory.plugins.modules import swapfile
from faketree import write

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'swap')
MIB = 1024 ** 2
GIB = 1024 ** 3
SWAPS_HEADER = 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n'
ROOMY_MEMINFO = 'MemTotal:  25165824 kB\nMemFree:  20000000 kB\nMemAvailable:  24000000 kB\n'


class Fake(object):
    def __init__(self, tmp_path, monkeypatch):
        self.root = tmp_path / 'root'
        (tmp_path / 'host').mkdir()
        self.data = tmp_path / 'data'
        self.data.mkdir()
        self.fstab = tmp_path / 'fstab'
        self.fstab.write_text('# fstab\nUUID=1 / ext4 defaults 0 1\n')
        self.swaps([])
        self.meminfo(ROOMY_MEMINFO)
        self.mounts('/dev/vda / ext4 rw,relatime 0 0\n')
        monkeypatch.setattr(swapfile, 'PROC_ROOT', str(self.root))
        monkeypatch.setattr(swapfile, 'FSTAB', str(self.fstab))
        monkeypatch.setattr(swapfile, 'HOST_ROOT', str(tmp_path / 'host'))
        self.host = tmp_path / 'host'

    def swaps(self, entries):
        lines = ''.join('%s file %d %d %d\n' % entry for entry in entries)
        write(self.root, '/proc/swaps', SWAPS_HEADER + lines)

    def meminfo(self, text):
        write(self.root, '/proc/meminfo', text)

    def mounts(self, text):
        write(self.root, '/proc/mounts', text)

    def swap_area(self, name, size, mode=0o600):
        """A file with a real swap signature at the end of its first 4 KiB page."""
        path = self.data / name
        with open(str(path), 'wb') as handle:
            handle.truncate(size)
            handle.seek(4096 - 10)
            handle.write(b'SWAPSPACE2')
        os.chmod(str(path), mode)
        return str(path)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return Fake(tmp_path, monkeypatch)


# The size table of swapfile's size option (swap.AUTO_SIZE_TABLE), written out: MemTotal in bytes -> swap file in bytes.
@pytest.mark.parametrize('mem_total, expected', [
    (512 * MIB, 1024 * MIB),                   # below 2 GiB: twice the RAM
    (1 * GIB, 2 * GIB),
    (2 * GIB - MIB, 4094 * MIB),
    (1000 * MIB + 5, 2001 * MIB),              # 2000 MiB + 10 bytes, rounded up to a whole MiB
    (2 * GIB, 4 * GIB),                        # 2 to 8 GiB: 4 GiB
    (6 * GIB, 4 * GIB),
    (8 * GIB, 4 * GIB),                        # 8 to 64 GiB: half the RAM (continuous at 8 GiB)
    (24 * GIB, 12 * GIB),
    (64 * GIB - 2 * MIB, 32767 * MIB),
    (64 * GIB, 32 * GIB),                      # 64 GiB and more: 32 GiB
    (128 * GIB, 32 * GIB),
    (1024 * GIB, 32 * GIB),
])
def test_auto_size_table(mem_total, expected):
    assert swap.auto_size(mem_total) == expected


def test_signature_and_priority_helpers():
    page = bytearray(4096)
    assert not swap.has_swap_signature(bytes(page))
    page[4086:4096] = b'SWAPSPACE2'
    assert swap.has_swap_signature(bytes(page))
    assert swap.priority_matches(-2, None)
    assert swap.priority_matches(-3, -1)
    assert not swap.priority_matches(5, -1)
    assert not swap.priority_matches(-2, 5)


def test_check_mode_on_missing_file_predicts_and_changes_nothing(fake, run_module):
    path = str(fake.data / 'swap')
    before = fake.fstab.read_bytes()
    result = run_module(swapfile, {'path': path, 'size': '64M', '_ansible_check_mode': True, '_ansible_diff': True})
    assert result['changed'] is True
    assert result['actions'] == ['create %s (64M, fallocate)' % path, 'mkswap %s' % path, 'swapon %s' % path,
                                 'add %s to %s' % (path, fake.fstab)]
    assert result['size_bytes'] == 64 * MIB and result['active'] is True and result['used_bytes'] == 0
    assert result['fstab_line'] == '%s none swap sw 0 0' % path
    assert not os.path.exists(path)
    assert fake.fstab.read_bytes() == before
    fstab_diff = result['diff'][1]
    assert fstab_diff['after'] == before.decode() + '%s none swap sw 0 0\n' % path
    assert 'active: no' in result['diff'][0]['before'] and 'size: 64M' in result['diff'][0]['after']


def test_method_auto_uses_dd_where_fallocate_is_unreliable(fake, run_module):
    fake.mounts('/dev/vda / ext3 rw 0 0\n')
    result = run_module(swapfile, {'path': str(fake.data / 's'), 'size': '1000000', '_ansible_check_mode': True})
    # 1000000 bytes is rounded up to a whole MiB.
    assert result['actions'][0] == 'create %s (1M, dd)' % (fake.data / 's')


def test_same_size_active_is_no_change(fake, run_module):
    path = fake.swap_area('swap', 32 * MIB)
    fake.swaps([(path, 32 * 1024 - 4, 0, -2)])
    fake.fstab.write_text('%s none swap sw 0 0\n' % path)
    result = run_module(swapfile, {'path': path, 'size': '32M'})
    assert result['changed'] is False, result
    assert result['actions'] == []
    assert result['priority'] == -2 and result['active'] is True


def test_wrong_mode_is_fixed_without_rebuilding(fake, run_module):
    path = fake.swap_area('swap', 32 * MIB, mode=0o644)
    fake.swaps([(path, 32 * 1024 - 4, 0, -2)])
    fake.fstab.write_text('%s none swap sw 0 0\n' % path)
    result = run_module(swapfile, {'path': path, 'size': '32M'})
    assert result['changed'] is True
    assert result['actions'] == ['chmod 0600 %s (was 0644)' % path]
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_priority_change_needs_swapoff_and_updates_fstab(fake, run_module):
    path = fake.swap_area('swap', 32 * MIB)
    fake.swaps([(path, 32 * 1024 - 4, 0, -2)])
    fake.fstab.write_text('%s none swap sw 0 0\n' % path)
    result = run_module(swapfile, {'path': path, 'size': '32M', 'priority': 5, '_ansible_check_mode': True})
    assert result['actions'] == ['swapoff %s (to change its priority to 5)' % path, 'swapon %s -p 5' % path,
                                 'update %s in %s' % (path, fake.fstab)]
    assert result['priority'] == 5


def test_swapoff_refused_when_swap_in_use_does_not_fit_in_ram(fake, run_module):
    path = fake.swap_area('busy', 4 * GIB - 4096)
    shutil.copy(os.path.join(FIXTURES, 'swaps-busy'), str(fake.root / 'proc' / 'swaps'))
    fake.swaps([(path, 4194300, 2097152, -2)])
    shutil.copy(os.path.join(FIXTURES, 'meminfo-tight'), str(fake.root / 'proc' / 'meminfo'))
    fake.fstab.write_text('%s none swap sw 0 0\n' % path)
    before = fake.fstab.read_bytes()
    result = run_module(swapfile, {'path': path, 'state': 'absent'})
    assert result['failed'] is True
    assert result['msg'].startswith('refusing to swapoff %s to remove it: 2G of swap is in use on it and only 512M '
                                    'of RAM is available (MemAvailable)' % path)
    assert result['msg'].endswith('free memory first or use force: true')
    assert '2G of swap is in use' in result['msg'] and '512M of RAM' in result['msg']
    assert os.path.exists(path) and fake.fstab.read_bytes() == before
    resize = run_module(swapfile, {'path': path, 'size': '1G', '_ansible_check_mode': True})
    assert resize['failed'] is True and 'to resize it' in resize['msg']
    forced = run_module(swapfile, {'path': path, 'state': 'absent', 'force': True, '_ansible_check_mode': True})
    assert forced['actions'][0] == 'swapoff %s (to remove it)' % path
    assert forced['changed'] is True and os.path.exists(path)


@pytest.mark.parametrize('fstype', ['tmpfs', 'overlay', 'nfs4', 'cifs', 'ramfs'])
def test_refuses_filesystems_the_kernel_cannot_swap_to(fake, run_module, fstype):
    fake.mounts('/dev/vda / ext4 rw 0 0\nsrv:/x %s %s rw 0 0\n' % (fake.data, fstype))
    result = run_module(swapfile, {'path': str(fake.data / 'swap'), 'size': '16M'})
    assert result['failed'] is True
    assert 'it is on %s (mounted at %s)' % (fstype, fake.data) in result['msg']
    assert not os.path.exists(str(fake.data / 'swap'))


def test_refuses_symlink_directory_device_and_kernel_trees(fake, run_module):
    target = fake.swap_area('real', 16 * MIB)
    link = str(fake.data / 'link')
    os.symlink(target, link)
    result = run_module(swapfile, {'path': link, 'size': '16M'})
    assert result['failed'] and 'it is a symlink (to %s)' % target in result['msg']
    result = run_module(swapfile, {'path': str(fake.data), 'size': '16M'})
    assert result['failed'] and 'it is a directory' in result['msg']
    result = run_module(swapfile, {'path': '/dev/null', 'size': '16M'})
    assert result['failed'] and 'under /dev' in result['msg']
    result = run_module(swapfile, {'path': '/proc/swapfile', 'size': '16M'})
    assert result['failed'] and 'under /proc' in result['msg']
    result = run_module(swapfile, {'path': 'relative/swap', 'size': '16M'})
    assert result['failed'] and 'absolute' in result['msg']


def test_refuses_to_mkswap_over_data_unless_forced(fake, run_module):
    path = str(fake.data / 'precious')
    with open(path, 'w') as handle:
        handle.write('do not lose me\n' * 100)
    result = run_module(swapfile, {'path': path, 'size': '16M'})
    assert result['failed'] and 'not a swap area' in result['msg']
    absent = run_module(swapfile, {'path': path, 'state': 'absent'})
    assert absent['failed'] and 'refusing to delete' in absent['msg']
    forced = run_module(swapfile, {'path': path, 'size': '16M', 'force': True, '_ansible_check_mode': True})
    assert forced['actions'][0] == 'replace %s (16M, fallocate)' % path
    with open(path) as handle:
        assert handle.read().startswith('do not lose me')


def test_not_enough_space_is_refused_before_writing(fake, run_module):
    path = str(fake.data / 'huge')
    result = run_module(swapfile, {'path': path, 'size': '1P'})
    assert result['failed'] and result['msg'].startswith('not enough space for a 1P swap file at %s' % path)
    assert not os.path.exists(path) and not os.path.exists(swap.temp_path(path))


def test_bad_size_reserve_and_priority_are_one_sentence(fake, run_module):
    path = str(fake.data / 's')
    assert 'cannot read' in run_module(swapfile, {'path': path, 'size': 'lots'})['msg']
    assert 'reserve' in run_module(swapfile, {'path': path, 'size': '1M', 'reserve': '120%'})['msg']
    assert 'between -1 and 32767' in run_module(swapfile, {'path': path, 'size': '1M', 'priority': 40000})['msg']


def test_auto_is_capped_by_free_space_and_stable(fake, run_module, monkeypatch):
    path = str(fake.data / 'auto')
    free = {'bavail': 10 * GIB}

    class Vfs(object):
        f_frsize = 4096

        @property
        def f_bavail(self):
            return free['bavail'] // 4096

        f_blocks = 100 * GIB // 4096

    monkeypatch.setattr(swapfile.os, 'statvfs', lambda _path: Vfs())
    # 24 GiB of RAM -> 12G by the table, but only 10G is free and 1G must stay free.
    result = run_module(swapfile, {'path': path, 'size': 'auto', 'reserve': '1G', '_ansible_check_mode': True})
    assert result['size_bytes'] == 9 * GIB
    # Once the file exists its blocks count as free, so the next run asks for the same size.
    fake.swap_area('auto', 9 * GIB)
    fake.swaps([(path, 9 * 1024 * 1024 - 4, 0, -2)])
    free['bavail'] = 1 * GIB
    again = run_module(swapfile, {'path': path, 'size': 'auto', 'reserve': '1G', '_ansible_check_mode': True})
    assert 'failed' not in again, again['msg']
    assert again['size_bytes'] == 9 * GIB
    # Space freed later: the file grows to the table size, built next to the old one.
    free['bavail'] = 20 * GIB
    grown = run_module(swapfile, {'path': path, 'size': 'auto', 'reserve': '1G', '_ansible_check_mode': True})
    assert grown['size_bytes'] == 12 * GIB and grown['actions'][1] == 'resize %s (12G, fallocate)' % path
    free['bavail'] = 1 * GIB
    tiny = run_module(swapfile, {'path': str(fake.data / 'other'), 'size': 'auto', 'reserve': '1G'})
    assert tiny['failed'] and tiny['msg'].startswith('size auto: 12G by the RAM table, but only 0 bytes of / (ext4) is free')


def test_leftover_of_a_killed_run_is_removed(fake, run_module):
    path = str(fake.data / 'swap')
    leftover = swap.temp_path(path)
    with open(leftover, 'wb') as handle:
        handle.truncate(MIB)
    result = run_module(swapfile, {'path': path, 'state': 'absent'})
    assert result['changed'] is True
    assert result['actions'] == ['remove leftover %s' % leftover]
    assert not os.path.exists(leftover)
    assert run_module(swapfile, {'path': path, 'state': 'absent'})['changed'] is False


def test_absent_removes_only_our_line_from_an_odd_fstab(fake, run_module):
    path = str(fake.data / 'gone')
    with open(os.path.join(FIXTURES, 'fstab-odd')) as handle:
        odd = handle.read()
    fake.fstab.write_bytes((odd + '%s\tnone  swap sw,pri=3 0 0\n' % path).encode())
    result = run_module(swapfile, {'path': path, 'state': 'absent'})
    assert result['changed'] is True and result['actions'] == ['remove %s from %s' % (path, fake.fstab)]
    assert fake.fstab.read_bytes() == odd.encode()


def test_container_is_skipped_with_a_reason(fake, run_module):
    (fake.host / 'run').mkdir()
    (fake.host / 'run' / '.containerenv').write_text('')
    result = run_module(swapfile, {'path': str(fake.data / 'swap'), 'size': '16M'})
    assert result['skipped'] is True and result['changed'] is False
    assert 'podman container' in result['msg']
    managed = run_module(swapfile, {'path': str(fake.data / 'swap'), 'size': '16M', 'in_container': 'manage',
                                    '_ansible_check_mode': True})
    assert managed['changed'] is True and 'skipped' not in managed


def test_enabled_false_swaps_off_and_keeps_the_file(fake, run_module):
    path = fake.swap_area('swap', 32 * MIB)
    fake.swaps([(path, 32 * 1024 - 4, 0, -2)])
    fake.fstab.write_text('%s none swap sw 0 0\n' % path)
    result = run_module(swapfile, {'path': path, 'size': '32M', 'enabled': False, 'fstab': False,
                                   '_ansible_check_mode': True})
    assert result['actions'] == ['swapoff %s (to disable it)' % path, 'remove %s from %s' % (path, fake.fstab)]
    assert result['active'] is False and result['fstab_line'] is None


# ---- issue 15: hostile input and faults


def test_path_with_a_nul_byte_is_one_sentence_and_touches_nothing(fake, run_module):
    before = fake.fstab.read_bytes()
    # _ansible_no_log is what no_target_syslog sends: without it AnsibleModule refuses the NUL byte
    # itself, in one sentence, when it logs the invocation to syslog.
    result = run_module(swapfile, {'path': str(fake.data / 'sw\x00ap'), 'size': '16M', '_ansible_no_log': True})
    assert result['failed'] is True
    assert result['msg'].startswith('path: ') and 'NUL byte' in result['msg']
    assert os.listdir(str(fake.data)) == [] and fake.fstab.read_bytes() == before


def test_parent_that_is_a_regular_file_is_named_as_such(fake, run_module):
    (fake.data / 'plain').write_text('x')
    result = run_module(swapfile, {'path': str(fake.data / 'plain' / 'swap'), 'size': '16M'})
    assert result['failed'] is True
    assert 'does not exist' not in result['msg']
    assert 'is a regular file, not a directory' in result['msg'] and result['msg'].startswith('path: ')


def test_data_size_in_refusal_has_a_unit(fake, run_module):
    (fake.data / 'small').write_bytes(b'x' * 37)
    result = run_module(swapfile, {'path': str(fake.data / 'small'), 'size': '16M'})
    assert 'it holds 37 bytes of data' in result['msg']


def test_immutable_fstab_is_refused_before_any_change(fake, run_module, monkeypatch):
    from ansible_collections.oomguard.memory.plugins.module_utils import files
    fstab = str(fake.fstab)
    monkeypatch.setattr(files, 'inode_flags', lambda path: files.FS_IMMUTABLE_FL if path == fstab else 0)
    calls = []
    monkeypatch.setattr(swapfile.AnsibleModule, 'run_command', lambda self, argv, **kw: calls.append(argv))
    before = fake.fstab.read_bytes()
    path = str(fake.data / 'swap')
    result = run_module(swapfile, {'path': path, 'size': '16M'})
    assert result['failed'] is True
    assert result['msg'] == ('refusing to change swap file %s: %s must be updated (add) but %s is immutable '
                             '(chattr +i; lsattr shows the i flag); remove the flag with chattr -i %s if the '
                             'change is intended; nothing was changed' % (path, fstab, fstab, fstab))
    assert calls == [] and os.listdir(str(fake.data)) == [] and fake.fstab.read_bytes() == before


def test_long_legal_path_gets_a_short_temp_name(fake, run_module):
    name = 'a' * 250
    path = str(fake.data / name)
    tmp = swap.temp_path(path)
    assert os.path.dirname(tmp) == str(fake.data) and len(os.path.basename(tmp)) <= 255
    assert swap.temp_path(path) == tmp, 'the temp name must be the same every run to find leftovers'
    assert swap.temp_path('/swapfile') == '/.swapfile.oomguard-swap-tmp'
    result = run_module(swapfile, {'path': path, 'size': '16M', '_ansible_check_mode': True})
    assert 'failed' not in result, result['msg']
