# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atomic file writes and a per-host lock, shared by every module that changes the host.

Private to the oomguard.memory collection: no compatibility promise to other code.

atomic_write() plans and (unless check mode) writes a whole file: the text goes to a temp file
in the target's own directory, is fsynced and renamed over the target, so a reader (or a crash)
sees the old file or the new one, never half of one. It keeps an existing file's mode and owner
and refuses to write through a symlink unless the caller expects one.

host_lock() serialises runs that change the same thing on one host (two playbooks, or two forks
of one, editing /etc/fstab), with flock on a file under /run/lock.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import struct
import tempfile
import time

from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError


class FileError(OomguardError):
    """A file could not be read or written; str() names the path and the reason."""


def file_kind(mode):
    """What a stat mode is, in words: 'regular file', 'directory', 'FIFO', ..."""
    for test, name in ((stat.S_ISREG, 'regular file'), (stat.S_ISDIR, 'directory'), (stat.S_ISLNK, 'symlink'),
                       (stat.S_ISFIFO, 'FIFO (named pipe)'), (stat.S_ISCHR, 'character device'),
                       (stat.S_ISBLK, 'block device'), (stat.S_ISSOCK, 'socket')):
        if test(mode):
            return name
    return 'special file'


def read_regular(path, limit=None, what=None):
    """The bytes of a regular file (at most ``limit``), or None when it does not exist.

    Opened without blocking and checked with fstat before reading, so a FIFO (which would wait
    for a writer forever), a device such as /dev/zero (which never ends) or a directory gives one
    FileError sentence instead of a hang. ``what`` names the option the path came from."""
    prefix = '%s: ' % what if what else ''
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_NOCTTY', 0))
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise FileError('%scannot read %s: %s' % (prefix, path, exc.strerror))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileError('%scannot read %s: it is a %s, not a regular file' % (prefix, path, file_kind(mode)))
        chunks, left = [], limit
        while left is None or left > 0:
            chunk = os.read(fd, 65536 if left is None else min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            if left is not None:
                left -= len(chunk)
        return b''.join(chunks)
    except (IOError, OSError) as exc:
        raise FileError('%scannot read %s: %s' % (prefix, path, exc.strerror))
    finally:
        os.close(fd)


def read_text(path, what=None):
    """The text of a regular file, or None when it does not exist (see read_regular)."""
    data = read_regular(path, what=what)
    return None if data is None else data.decode('utf-8', 'surrogateescape')


# linux/fs.h: FS_IOC_GETFLAGS and the inode flags that make a file refuse changes (chattr +i, +a).
FS_IOC_GETFLAGS = 0x80086601
FS_IMMUTABLE_FL = 0x10
FS_APPEND_FL = 0x20


def inode_flags(path):
    """The chattr flags of ``path`` (0 when the filesystem has none or the file is missing)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return 0
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
        return struct.unpack('i', bytes(buf[:4]))[0]
    except (IOError, OSError):
        return 0
    finally:
        os.close(fd)


def write_problem(path):
    """Why ``path`` cannot be replaced by an atomic write, as a phrase, or None when it can.

    Checked before a module changes anything, so a change that needs this file is refused
    whole instead of being left half done."""
    directory = os.path.dirname(path) or '.'
    for target, name in ((path, path), (directory, 'its directory %s' % directory)):
        flags = inode_flags(target)
        if flags & FS_IMMUTABLE_FL:
            return ('%s is immutable (chattr +i; lsattr shows the i flag); remove the flag with chattr -i %s '
                    'if the change is intended' % (name, target))
        if flags & FS_APPEND_FL:
            return ('%s is append-only (chattr +a); remove the flag with chattr -a %s if the change is intended'
                    % (name, target))
    # access() answers for root too on a read-only mount (EROFS).
    if not os.access(directory, os.W_OK):
        return '%s cannot be written (a read-only filesystem, or no permission for this user)' % directory
    return None


def _check_target(path, allow_symlink):
    try:
        info = os.lstat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise FileError('cannot inspect %s: %s' % (path, exc.strerror))
    if stat.S_ISLNK(info.st_mode):
        if not allow_symlink:
            raise FileError('refusing to write %s: it is a symlink (to %s), which this change does not expect'
                            % (path, os.readlink(path)))
        return _check_target(os.path.realpath(path), False)
    if not stat.S_ISREG(info.st_mode):
        raise FileError('refusing to write %s: it is not a regular file' % path)
    return info


def atomic_write(path, text, mode=0o644, check_mode=False, allow_symlink=False):
    """Make ``path`` hold ``text``; return {'changed', 'before', 'after', 'path'}.

    before is None when the file did not exist. ``mode`` applies to a new file only; an existing
    file keeps its mode and owner. With allow_symlink the symlink's target is rewritten and the
    link itself is kept.
    """
    info = _check_target(path, allow_symlink)
    target = os.path.realpath(path) if info is not None and allow_symlink else path
    before = read_text(target) if info is not None else None
    result = {'changed': before != text, 'before': before, 'after': text, 'path': path}
    if not result['changed'] or check_mode:
        return result
    directory = os.path.dirname(target) or '.'
    try:
        fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(target), suffix='.oomguard-tmp', dir=directory)
    except (IOError, OSError) as exc:
        raise FileError('cannot write %s: %s' % (path, exc.strerror))
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(text.encode('utf-8', 'surrogateescape'))
            handle.flush()
            os.fsync(handle.fileno())
        if info is not None:
            os.chmod(tmp, stat.S_IMODE(info.st_mode))
            os.chown(tmp, info.st_uid, info.st_gid)
        else:
            os.chmod(tmp, mode)
        os.rename(tmp, target)
        fsync_dir(directory)
    except (IOError, OSError) as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise FileError('cannot write %s: %s' % (path, exc.strerror))
    return result


def remove_file(path, check_mode=False):
    """Delete a regular file; return {'changed', 'before', 'after': None, 'path'}."""
    info = _check_target(path, False)
    if info is None:
        return {'changed': False, 'before': None, 'after': None, 'path': path}
    before = read_text(path)
    if not check_mode:
        try:
            os.unlink(path)
            fsync_dir(os.path.dirname(path) or '.')
        except OSError as exc:
            raise FileError('cannot remove %s: %s' % (path, exc.strerror))
    return {'changed': True, 'before': before, 'after': None, 'path': path}


def fsync_dir(directory):
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


LOCK_DIRS = ('/run/lock', '/var/lock', '/tmp')


@contextlib.contextmanager
def host_lock(name, timeout=60, lock_dir=None):
    """Hold an exclusive host-wide lock called ``name`` (e.g. 'fstab', 'swap:/swapfile').

    Waits up to ``timeout`` seconds, then raises FileError saying who to wait for.
    """
    directory = lock_dir or next((d for d in LOCK_DIRS if os.path.isdir(d)), '/tmp')
    safe = ''.join(c if c.isalnum() or c in '-_.' else '_' for c in name)
    if len(safe) > 100:
        # A long cgroup or swap file path must not make the lock file's name too long.
        safe = safe[:60] + '-' + hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:16]
    path = os.path.join(directory, 'oomguard-%s.lock' % safe)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise FileError('cannot lock %s: %s' % (path, exc.strerror))
                if time.monotonic() >= deadline:
                    raise FileError('another oomguard run holds %s (lock %r) for more than %d seconds; '
                                    'wait for it to finish and retry' % (path, name, timeout))
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, ('%d\n' % os.getpid()).encode())
        yield path
    finally:
        os.close(fd)
