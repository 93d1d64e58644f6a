"""Atomic writes and the host lock, on real files in a temp dir."""
import multiprocessing
import os
import stat
import time

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import files


def test_new_file_gets_mode_and_text(tmp_path):
    path = str(tmp_path / 'new.conf')
    result = files.atomic_write(path, 'vm.swappiness = 10\n', mode=0o600)
    assert result == {'changed': True, 'before': None, 'after': 'vm.swappiness = 10\n', 'path': path}
    assert open(path).read() == 'vm.swappiness = 10\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [n for n in os.listdir(str(tmp_path)) if 'oomguard-tmp' in n] == []


def _other_group():
    """A group we belong to other than the one new files get, or None."""
    return next((gid for gid in os.getgroups() if gid != os.getegid()), None)


def _owners():
    if os.geteuid() == 0:
        yield pytest.param((1234, 2345), id='foreign-owner')
    else:
        yield pytest.param((1234, 2345), id='foreign-owner',
                           marks=pytest.mark.skip(reason='giving a file to another user needs root'))
    other = _other_group()
    # Without root a file can still be given to another group of ours: the copy must keep it.
    yield pytest.param((os.geteuid(), other), id='other-group',
                       marks=[] if other is not None else pytest.mark.skip(reason='this user is in one group only'))


@pytest.mark.parametrize('owner', list(_owners()))
def test_existing_file_keeps_mode_owner_and_inode_changes(tmp_path, owner):
    path = tmp_path / 'fstab'
    path.write_text('old\n')
    os.chmod(str(path), 0o640)
    os.chown(str(path), *owner)
    inode = os.stat(str(path)).st_ino
    result = files.atomic_write(str(path), 'new\n', mode=0o600)
    assert result['changed'] and result['before'] == 'old\n' and result['after'] == 'new\n'
    info = os.stat(str(path))
    assert stat.S_IMODE(info.st_mode) == 0o640 and (info.st_uid, info.st_gid) == owner
    assert info.st_ino != inode  # replaced by rename, never rewritten in place


def test_existing_file_keeps_mode_and_inode_changes_without_root(tmp_path):
    path = tmp_path / 'fstab'
    path.write_text('old\n')
    os.chmod(str(path), 0o604)
    inode = os.stat(str(path)).st_ino
    files.atomic_write(str(path), 'new\n', mode=0o600)
    info = os.stat(str(path))
    assert stat.S_IMODE(info.st_mode) == 0o604 and (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid())
    assert info.st_ino != inode and path.read_text() == 'new\n'


def test_same_text_is_no_change_and_no_write(tmp_path):
    path = tmp_path / 'same'
    path.write_text('x\n')
    mtime = os.stat(str(path)).st_mtime_ns
    time.sleep(0.01)
    assert files.atomic_write(str(path), 'x\n')['changed'] is False
    assert os.stat(str(path)).st_mtime_ns == mtime


def test_check_mode_plans_but_does_not_write(tmp_path):
    path = tmp_path / 'f'
    path.write_text('a\n')
    result = files.atomic_write(str(path), 'b\n', check_mode=True)
    assert result['changed'] and result['before'] == 'a\n' and result['after'] == 'b\n'
    assert path.read_text() == 'a\n'
    assert files.atomic_write(str(tmp_path / 'missing'), 'b\n', check_mode=True)['before'] is None
    assert not (tmp_path / 'missing').exists()


def test_refuses_unexpected_symlink(tmp_path):
    target = tmp_path / 'real'
    target.write_text('keep\n')
    link = tmp_path / 'link'
    link.symlink_to(target)
    with pytest.raises(files.FileError) as caught:
        files.atomic_write(str(link), 'evil\n')
    assert 'symlink' in str(caught.value) and str(link) in str(caught.value)
    assert target.read_text() == 'keep\n'


def test_expected_symlink_rewrites_target_and_keeps_link(tmp_path):
    target = tmp_path / 'real'
    target.write_text('old\n')
    link = tmp_path / 'link'
    link.symlink_to(target)
    assert files.atomic_write(str(link), 'new\n', allow_symlink=True)['changed']
    assert link.is_symlink() and target.read_text() == 'new\n'


def test_refuses_directory_and_reports_unwritable_dir(tmp_path):
    with pytest.raises(files.FileError, match='not a regular file'):
        files.atomic_write(str(tmp_path), 'x')
    with pytest.raises(files.FileError, match='cannot write'):
        files.atomic_write(str(tmp_path / 'no' / 'such' / 'dir'), 'x')


def test_non_utf8_bytes_survive_a_round_trip(tmp_path):
    path = tmp_path / 'latin1'
    path.write_bytes(b'# caf\xe9\n')
    text = files.read_text(str(path))
    files.atomic_write(str(path), text + 'x\n')
    assert path.read_bytes() == b'# caf\xe9\nx\n'


def test_remove_file(tmp_path):
    path = tmp_path / 'gone'
    path.write_text('bye\n')
    assert files.remove_file(str(path), check_mode=True)['changed'] and path.exists()
    assert files.remove_file(str(path)) == {'changed': True, 'before': 'bye\n', 'after': None, 'path': str(path)}
    assert not path.exists()
    assert files.remove_file(str(path))['changed'] is False


def _hold(lock_dir, ready, release):
    with files.host_lock('fstab', lock_dir=lock_dir):
        ready.set()
        release.wait(10)


def test_host_lock_excludes_a_second_holder(tmp_path):
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(files.FileError) as caught:
            with files.host_lock('fstab', timeout=0.3, lock_dir=str(tmp_path)):
                pass
        assert 'another oomguard run' in str(caught.value)
        release.set()
        holder.join(10)
        with files.host_lock('fstab', timeout=5, lock_dir=str(tmp_path)) as path:
            assert open(path).read().strip() == str(os.getpid())
    finally:
        release.set()
        holder.join(10)


def test_host_lock_names_are_independent_and_safe(tmp_path):
    with files.host_lock('swap:/var/tmp/a b', lock_dir=str(tmp_path)) as first:
        with files.host_lock('fstab', timeout=0.2, lock_dir=str(tmp_path)) as second:
            assert first != second
    assert os.path.basename(first) == 'oomguard-swap__var_tmp_a_b.lock'


def test_read_text_refuses_a_fifo_and_a_device_without_blocking(tmp_path):
    import signal
    fifo = str(tmp_path / 'pipe')
    os.mkfifo(fifo)

    def hang(_signum, _frame):
        raise AssertionError('blocked for 5 seconds')
    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(5)
    try:
        with pytest.raises(files.FileError, match='it is a FIFO'):
            files.read_text(fifo)
        with pytest.raises(files.FileError, match='character device'):
            files.read_text('/dev/zero')
        with pytest.raises(files.FileError, match='^sysctl_file: cannot read .*: it is a directory'):
            files.read_text(str(tmp_path), what='sysctl_file')
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_write_problem_names_immutable_files(tmp_path, monkeypatch):
    from ansible_collections.oomguard.memory.plugins.module_utils import files
    target = str(tmp_path / 'fstab')
    assert files.write_problem(target) is None
    monkeypatch.setattr(files, 'inode_flags', lambda path: files.FS_IMMUTABLE_FL if path == target else 0)
    assert files.write_problem(target).startswith('%s is immutable (chattr +i' % target)
    monkeypatch.setattr(files, 'inode_flags', lambda path: files.FS_APPEND_FL if path == str(tmp_path) else 0)
    assert files.write_problem(target).startswith('its directory %s is append-only' % tmp_path)


def test_host_lock_with_a_very_long_name(tmp_path):
    with files.host_lock('cgroup-' + 'a' * 4000, lock_dir=str(tmp_path)) as path:
        assert len(os.path.basename(path)) < 120
