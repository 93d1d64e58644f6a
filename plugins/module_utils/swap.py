# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A swap file: what is there (``observe``), what to do (``plan``), doing it (``apply``).

Private to the oomguard.memory collection: no compatibility promise to other code.

Map: ``observe()`` returns an ``Observed`` value (the file, its leftover temp file, /proc/swaps,
/proc/meminfo, /etc/fstab, the mount); ``plan()`` turns it and the module's options into a
``Plan`` value (the ordered ``actions`` a user sees, and what each step needs) or raises
SwapError before anything changed; ``apply()`` carries a plan out and, when /etc/fstab cannot be
written after all, takes back what it did and says in which state the host is. ``auto_size()``
is the one copy of the size table that ``size: auto`` follows (documented in the swapfile module
and the swap role, which point here). Messages always name the user's path, never the temp file.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import hashlib
import os
import signal
import stat

from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.files import (
    FileError, atomic_write, file_kind, fsync_dir, read_regular, read_text, write_problem)
from ansible_collections.oomguard.memory.plugins.module_utils.fstab import current_line, set_swap_entry
from ansible_collections.oomguard.memory.plugins.module_utils.procfs import (
    mount_of, read_meminfo, read_mounts, read_swaps)
from ansible_collections.oomguard.memory.plugins.module_utils.sizes import SizeError, human_size, parse_size

MIB = 1024 ** 2
GIB = 1024 ** 3
TEMP_SUFFIX = '.oomguard-swap-tmp'
REFUSED_FSTYPES = ('tmpfs', 'ramfs', 'overlay', 'aufs', 'nfs', 'nfs4', 'cifs', 'smb3', 'smbfs', '9p', 'squashfs',
                   'iso9660', 'fuse', 'fuseblk', 'ceph', 'glusterfs', 'virtiofs', 'zfs', 'proc', 'sysfs', 'devtmpfs')
FALLOCATE_FSTYPES = ('ext4', 'xfs', 'btrfs')
FORBIDDEN_TREES = ('/proc', '/sys', '/dev')
SWAP_MAGICS = (b'SWAPSPACE2', b'SWAP-SPACE')
PAGE_SIZES = (4096, 8192, 16384, 65536)
NAME_MAX = 255

# size: auto. Below 2 GiB of RAM: twice the RAM; 2 to 8 GiB: 4 GiB; 8 to 64 GiB: half the RAM;
# above 64 GiB: 32 GiB. This table is the only copy; docs say it in words and point here.
AUTO_SIZE_TABLE = (
    (2 * GIB, lambda ram: 2 * ram),
    (8 * GIB, lambda ram: 4 * GIB),
    (64 * GIB, lambda ram: ram // 2),
    (None, lambda ram: 32 * GIB),
)


class SwapError(OomguardError):
    """A swap change we refuse or could not make; str() is the sentence for the user."""


def auto_size(mem_total):
    """The swap size in bytes for ``mem_total`` bytes of RAM by AUTO_SIZE_TABLE (whole MiB)."""
    for below, size in AUTO_SIZE_TABLE:
        if below is None or mem_total < below:
            return round_mib(size(mem_total))


def round_mib(size):
    return -(-size // MIB) * MIB


def swapoff_margin(mem_total):
    return max(128 * MIB, mem_total // 20)


def priority_matches(active, wanted):
    """None (unset) accepts any priority; -1 asks for the kernel's own, which is always negative."""
    if wanted is None:
        return True
    if wanted == -1:
        return active < 0
    return active == wanted


def has_swap_signature(head):
    """True when the first page of a file (any common page size) ends with a swap signature."""
    for page in PAGE_SIZES:
        if len(head) >= page and head[page - 10:page] in SWAP_MAGICS:
            return True
    return False


def temp_path(path):
    """Where the new file is built: '.<name>.oomguard-swap-tmp' next to it, or, when that name
    would be longer than a file name may be, '.oomguard-swap-<hash of the name>'."""
    name = os.path.basename(path)
    temp = '.%s%s' % (name, TEMP_SUFFIX)
    if len(temp.encode('utf-8', 'surrogateescape')) > NAME_MAX:
        temp = '.oomguard-swap-%s' % hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:16]
    return os.path.join(os.path.dirname(path), temp)


def _lstat(path):
    try:
        return os.lstat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise SwapError('cannot inspect %s: %s' % (path, exc.strerror))


_KINDS = {'regular file': 'file', 'character device': 'device', 'block device': 'device',
          'FIFO (named pipe)': 'special file', 'socket': 'special file'}


def _kind(info):
    """'file', 'symlink', 'directory', 'device' or 'special file' (None: nothing there)."""
    if info is None:
        return None
    name = file_kind(info.st_mode)
    return _KINDS.get(name, name)


class Observed(object):
    """What is on the host for one swap file path (a value; observe() fills it)."""

    def __init__(self, path):
        self.path = path
        self.tmp = temp_path(path)
        self.info = self.tmp_info = None
        self.kind = None
        self.is_swap = False
        self.active = self.tmp_active = None
        self.meminfo = {}
        self.fstab_before = None
        self.parent_kind = None
        self.mount = None

    @property
    def size(self):
        return self.info.st_size if self.kind == 'file' else 0


def observe(path, proc_root, fstab, warn):
    """An Observed for ``path`` (normalised, absolute), read from the host."""
    seen = Observed(path)
    seen.info = _lstat(path)
    seen.kind = _kind(seen.info)
    if seen.kind == 'file':
        try:
            seen.is_swap = has_swap_signature(read_regular(path, limit=max(PAGE_SIZES), what='path') or b'')
        except FileError as exc:
            raise SwapError(str(exc))
    seen.tmp_info = _lstat(seen.tmp)
    swaps = read_swaps(proc_root, warn=warn)
    # /proc/swaps shows the resolved path: /var/tmp/x is /private/var/tmp/x if /var/tmp is a symlink.
    real_dir = os.path.realpath(os.path.dirname(path))
    names = (path, os.path.join(real_dir, os.path.basename(path)))
    tmp_names = (seen.tmp, os.path.join(real_dir, os.path.basename(seen.tmp)))
    seen.active = next((s for s in swaps if s['path'] in names), None)
    seen.tmp_active = next((s for s in swaps if s['path'] in tmp_names), None)
    seen.meminfo = read_meminfo(proc_root)
    seen.fstab_before = read_text(fstab)
    parent = _parent_kind(os.path.dirname(path))
    seen.parent_kind = parent
    if parent == 'directory':
        seen.mount = mount_of(os.path.realpath(os.path.dirname(path)), read_mounts(proc_root))
    return seen


def _parent_kind(directory):
    """'directory', None (missing), or what else the nearest existing ancestor is."""
    try:
        info = os.stat(directory)
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return 'not a directory'
        return None
    return 'directory' if stat.S_ISDIR(info.st_mode) else file_kind(info.st_mode)


class Plan(object):
    """What a run will do, step by step (a value; plan() fills it)."""

    def __init__(self):
        self.actions = []
        self.warnings = []
        self.size = 0
        self.build = None
        self.method = None
        self.swapoff = self.swapon = False
        self.fix_mode = self.fix_owner = False
        self.remove_tmp = False
        self.delete = False
        self.fstab_after = None
        self.fstab_changed = False


def check_path(path):
    """Refuse kernel trees and paths /etc/fstab cannot hold (absolute, no NUL: params.check_path)."""
    if '\n' in path:
        raise SwapError('path: %r contains a newline, which /etc/fstab cannot hold' % path)
    for tree in FORBIDDEN_TREES:
        if path == tree or path.startswith(tree + '/'):
            raise SwapError('path: refusing to manage a swap file at %s: it is under %s, which belongs to the '
                            'kernel' % (path, tree))


def plan(seen, params, fstab):
    """The Plan for ``params`` (the module's options) over ``seen``; SwapError when refused."""
    todo = Plan()
    _refuse_kind(seen)
    _plan_leftover(seen, todo)
    if params['state'] == 'absent':
        _plan_absent(seen, params, todo)
    else:
        _plan_present(seen, params, todo)
    _plan_fstab(seen, params, todo, fstab, present=params['state'] == 'present' and params['fstab'])
    return todo


def _refuse_kind(seen):
    if seen.kind not in (None, 'file'):
        extra = ' (to %s)' % os.readlink(seen.path) if seen.kind == 'symlink' else ''
        raise SwapError('path: refusing to manage %s as a swap file: it is a %s%s; point path at a regular file'
                        % (seen.path, seen.kind, extra))


def _plan_leftover(seen, todo):
    if seen.tmp_info is None and seen.tmp_active is None:
        return
    if seen.tmp_info is not None and not stat.S_ISREG(seen.tmp_info.st_mode):
        raise SwapError('refusing to clean up %s: it is not a regular file, so it is not a leftover of ours'
                        % seen.tmp)
    todo.remove_tmp = True
    if seen.tmp_active:
        todo.actions.append('swapoff leftover %s' % seen.tmp)
    todo.actions.append('remove leftover %s' % seen.tmp)


def _check_swapoff(seen, params, todo, why):
    """Refuse unless swapping off the active file is safe (or forced)."""
    used = seen.active['used_kb'] * 1024
    available = seen.meminfo.get('MemAvailable', 0) * 1024
    margin = swapoff_margin(seen.meminfo.get('MemTotal', 0) * 1024)
    if used + margin <= available:
        return
    if params['force']:
        todo.warnings.append('forcing swapoff of %s with %s in use and %s of RAM available'
                             % (seen.path, human_size(used), human_size(available)))
        return
    raise SwapError('refusing to swapoff %s to %s: %s of swap is in use on it and only %s of RAM is available '
                    '(MemAvailable), which does not hold it plus a margin of %s; free memory first or use '
                    'force: true' % (seen.path, why, human_size(used), human_size(available), human_size(margin)))


def fs_space(path):
    vfs = os.statvfs(os.path.dirname(path))
    return vfs.f_bavail * vfs.f_frsize, vfs.f_blocks * vfs.f_frsize


def _reserve(params, total):
    try:
        return parse_size(params['reserve'], name='reserve', allow_percent=True, total=total)
    except SizeError as exc:
        raise SwapError(str(exc))


def target_size(seen, params):
    """The size in bytes the file must have (state=present; required_if makes size given)."""
    if params['size'].strip().lower() != 'auto':
        try:
            wanted = parse_size(params['size'], name='size')
        except SizeError as exc:
            raise SwapError(str(exc))
        if wanted <= 0:
            raise SwapError('size: %r is zero; a swap file needs at least 1M' % params['size'])
        return round_mib(wanted)
    table = auto_size(seen.meminfo['MemTotal'] * 1024)
    free, total = fs_space(seen.path)
    reserve = _reserve(params, total)
    if seen.is_swap:
        # Keep an existing swap area unless a better size is possible: counting its own space as free,
        # the same host gives the same answer run after run, and a filling disk never forces a resize.
        floor = min(table, (free + seen.info.st_size - reserve) // MIB * MIB)
        if floor <= seen.info.st_size <= table:
            return seen.info.st_size
    # A new file is built next to any old one, so only the space free now counts.
    target = min(table, (free - reserve) // MIB * MIB)
    if target < 16 * MIB:
        raise SwapError('size auto: %s by the RAM table, but only %s of %s (%s) is free after keeping the reserve '
                        'of %s; free disk space or lower reserve'
                        % (human_size(table), human_size(max(target, 0)), seen.mount['mountpoint'],
                           seen.mount['fstype'], params['reserve']))
    return target


def _check_space(seen, params, size):
    free, total = fs_space(seen.path)
    reserve = _reserve(params, total)
    if free - size < reserve:
        raise SwapError('not enough space for a %s swap file at %s: %s is free on %s (%s) and %s must stay free '
                        '(reserve %s); free disk space, choose a smaller size or lower reserve'
                        % (human_size(size), seen.path, human_size(free), seen.mount['mountpoint'],
                           seen.mount['fstype'], human_size(reserve), params['reserve']))


def _check_place(seen, params):
    if params['priority'] is not None and not -1 <= params['priority'] <= 32767:
        raise SwapError('priority: must be between -1 and 32767, got %d' % params['priority'])
    directory = os.path.dirname(seen.path)
    if seen.parent_kind is None:
        raise SwapError('path: cannot create %s: directory %s does not exist' % (seen.path, directory))
    if seen.parent_kind != 'directory':
        raise SwapError('path: cannot create %s: %s (or a directory above it) is a %s, not a directory'
                        % (seen.path, directory, seen.parent_kind.replace('not a directory', 'regular file')))
    fstype = seen.mount['fstype'] if seen.mount else 'unknown'
    if fstype in REFUSED_FSTYPES or fstype.startswith('fuse.'):
        raise SwapError('refusing to put a swap file at %s: it is on %s (mounted at %s), which the kernel cannot '
                        'swap to; choose a path on a local disk filesystem such as ext4 or xfs'
                        % (seen.path, fstype, seen.mount['mountpoint']))


def _build_reason(seen, params, size):
    if seen.kind is None:
        return 'create'
    if not seen.is_swap:
        if seen.info.st_size > 0 and not params['force']:
            raise SwapError('refusing to make %s a swap file: it holds %s of data that is not a swap area; remove '
                            'it, choose another path, or use force: true to overwrite it'
                            % (seen.path, human_size(seen.info.st_size)))
        return 'replace'
    if seen.info.st_size != size:
        return 'resize'
    if seen.active is None and seen.info.st_blocks * 512 < seen.info.st_size:
        return 'rebuild (it has holes, which swapon refuses)'
    return None


def _swapoff_reason(seen, params, build):
    if seen.active is None:
        return None
    if build:
        return 'resize it' if build == 'resize' else 'replace it'
    if not params['enabled']:
        return 'disable it'
    if not priority_matches(seen.active['priority'], params['priority']):
        return 'change its priority to %d' % params['priority']
    return None


def _plan_present(seen, params, todo):
    _check_place(seen, params)
    todo.size = size = target_size(seen, params)
    todo.build = build = _build_reason(seen, params, size)
    why = _swapoff_reason(seen, params, build)
    todo.swapoff = why is not None
    if why:
        _check_swapoff(seen, params, todo, why)
        todo.actions.append('swapoff %s (to %s)' % (seen.path, why))
    if build:
        _check_space(seen, params, size)
        method = params['method']
        if method == 'auto':
            method = 'fallocate' if seen.mount and seen.mount['fstype'] in FALLOCATE_FSTYPES else 'dd'
        todo.method = method
        todo.actions.append('%s %s (%s, %s)' % (build.split(' ', 1)[0], seen.path, human_size(size), method))
        if build.startswith('rebuild'):
            todo.warnings.append('%s has holes; rebuilding it' % seen.path)
        todo.actions.append('mkswap %s' % seen.path)
    else:
        mode = stat.S_IMODE(seen.info.st_mode)
        todo.fix_mode = mode != 0o600
        todo.fix_owner = (seen.info.st_uid, seen.info.st_gid) != (0, 0)
        if todo.fix_mode:
            todo.actions.append('chmod 0600 %s (was %04o)' % (seen.path, mode))
        if todo.fix_owner:
            todo.actions.append('chown root:root %s (was %d:%d)' % (seen.path, seen.info.st_uid, seen.info.st_gid))
    todo.swapon = params['enabled'] and (seen.active is None or todo.swapoff)
    if todo.swapon:
        pri = params['priority']
        todo.actions.append('swapon %s' % seen.path + ('' if pri in (None, -1) else ' -p %d' % pri))


def _plan_absent(seen, params, todo):
    if seen.kind == 'file' and not seen.is_swap and seen.info.st_size > 0 and not params['force']:
        raise SwapError('refusing to delete %s: it holds %s of data that is not a swap area; use force: true to '
                        'delete it anyway' % (seen.path, human_size(seen.info.st_size)))
    todo.swapoff = seen.active is not None
    if todo.swapoff:
        _check_swapoff(seen, params, todo, 'remove it')
        todo.actions.append('swapoff %s (to remove it)' % seen.path)
    todo.delete = seen.kind == 'file'


def _plan_fstab(seen, params, todo, fstab, present):
    before = seen.fstab_before or ''
    todo.fstab_after = set_swap_entry(before, seen.path, params['priority'], present=present)
    todo.fstab_changed = todo.fstab_after != before
    if todo.fstab_changed:
        verb = 'update' if present and current_line(before, seen.path) is not None else (
            'add' if present else 'remove')
        todo.actions.append('%s %s %s %s' % (verb, seen.path, {'add': 'to', 'update': 'in', 'remove': 'from'}[verb],
                                             fstab))
        # Found before the first change: a task must not leave swap on without its entry, or off with it.
        problem = write_problem(fstab)
        if problem:
            raise SwapError('refusing to change swap file %s: %s must be updated (%s) but %s; nothing was changed'
                            % (seen.path, fstab, verb, problem))
    if params['state'] == 'absent' and todo.delete:
        todo.actions.append('delete %s' % seen.path)


def command_failure(argv, rc, out, err, path=None, tmp=None):
    """One sentence for a failed command: its reason (or the signal that killed it), with the
    temp file's name replaced by the user's path."""
    reason = (err or out or '').strip()
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = 'signal %d' % -rc
        reason = ('killed by %s' % name) + ('; %s' % reason if reason else '')
    elif not reason:
        reason = 'exit status %d and no error output' % rc
    text = ' '.join(argv) + ' failed: ' + ' '.join(reason.split())
    if tmp:
        text = text.replace(tmp, path)
    return text


class Applier(object):
    """Carries out a Plan. ``run_command(argv)`` returns (rc, out, err), as AnsibleModule's does."""

    def __init__(self, seen, todo, params, run_command, fstab):
        self.seen = seen
        self.todo = todo
        self.params = params
        self.run_command = run_command
        self.fstab = fstab
        self.done = []

    def run(self, argv):
        rc, out, err = self.run_command(argv)
        if rc != 0:
            raise SwapError(command_failure(argv, rc, out, err, self.seen.path, self.seen.tmp))
        return out

    def apply(self):
        seen, todo = self.seen, self.todo
        if todo.remove_tmp:
            if seen.tmp_active:
                self.run(['swapoff', seen.tmp])
            if seen.tmp_info is not None:
                os.unlink(seen.tmp)
                fsync_dir(os.path.dirname(seen.tmp))
        if todo.swapoff:
            self.run(['swapoff', seen.path])
            self.done.append('swapoff')
        if self.params['state'] == 'present':
            self._present()
        self._write_fstab()
        if todo.delete:
            os.unlink(seen.path)
            fsync_dir(os.path.dirname(seen.path))

    def _present(self):
        seen, todo = self.seen, self.todo
        if todo.build:
            self.create()
            self.done.append('create')
        else:
            if todo.fix_mode:
                os.chmod(seen.path, 0o600)
            if todo.fix_owner:
                os.chown(seen.path, 0, 0)
        if todo.swapon:
            argv = ['swapon']
            if self.params['priority'] is not None and self.params['priority'] >= 0:
                argv += ['-p', str(self.params['priority'])]
            self.run(argv + [seen.path])
            self.done.append('swapon')

    def _write_fstab(self):
        if not self.todo.fstab_changed:
            return
        try:
            atomic_write(self.fstab, self.todo.fstab_after, mode=0o644)
        except FileError as exc:
            raise SwapError('%s; %s' % (exc, self.undo()))

    def undo(self):
        """Take back this run's swapon/swapoff after /etc/fstab failed; the state as a phrase."""
        seen, path = self.seen, self.seen.path
        if 'swapon' in self.done and seen.active is None:
            rc = self.run_command(['swapoff', path])[0]
            if rc == 0 and 'create' in self.done and seen.kind is None:
                os.unlink(path)
                return 'took back the swapon and the new file %s: the host is as before the task' % path
            if rc == 0:
                return '%s was swapped off again; it is not active, as before the task' % path
            return '%s stays active as swap without a matching fstab entry' % path
        if 'swapoff' in self.done and 'create' not in self.done:
            argv = ['swapon'] + (['-p', str(seen.active['priority'])] if seen.active['priority'] >= 0 else [])
            if self.run_command(argv + [path])[0] == 0:
                return '%s was swapped on again: swap is as before the task' % path
            return '%s stays swapped off while its fstab entry is unchanged' % path
        return 'the swap file %s is %s and the fstab entry is unchanged' % (
            path, 'active' if 'swapon' in self.done or seen.active and 'swapoff' not in self.done else 'not active')

    def create(self):
        """Build the file under the temporary name, then rename it into place."""
        tmp, size, path = self.seen.tmp, self.todo.size, self.seen.path
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.fchown(fd, 0, 0)
        finally:
            os.close(fd)
        try:
            self._allocate(tmp, size)
            self.run(['mkswap', tmp])
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
            fsync_dir(os.path.dirname(path))
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _allocate(self, tmp, size):
        mount = self.seen.mount or {}
        if mount.get('fstype') == 'btrfs':
            self.run(['chattr', '+C', tmp])
        method = self.todo.method
        if method == 'fallocate':
            self.run(['fallocate', '-l', str(size), tmp])
            if os.stat(tmp).st_blocks * 512 < size:
                if self.params['method'] == 'fallocate':
                    raise SwapError('fallocate left holes in the new swap file for %s on %s; use method: dd'
                                    % (self.seen.path, mount.get('fstype')))
                method = 'dd'
        if method == 'dd':
            self.run(['dd', 'if=/dev/zero', 'of=%s' % tmp, 'bs=1M', 'count=%d' % (size // MIB),
                      'conv=fsync', 'status=none'])


def summary(path, size, active, priority):
    return 'path: %s\nsize: %s\nactive: %s\npriority: %s\n' % (
        path, human_size(size) if size else 'none', 'yes' if active else 'no',
        'kernel default' if priority is None else priority)


def predicted(seen, todo, params):
    """(active, priority, used bytes) after the plan, without looking at the host again."""
    active = seen.active is not None and not todo.swapoff or todo.swapon
    if not active:
        return False, None, 0
    if todo.swapon:
        return True, (None if params['priority'] in (None, -1) else params['priority']), 0
    return True, seen.active['priority'], seen.active['used_kb'] * 1024


def result(seen, todo, params, changed, check_mode, proc_root, fstab):
    """The module's return values (RETURN of swapfile) after a run."""
    path = seen.path
    before = summary(path, seen.size, seen.active is not None, seen.active['priority'] if seen.active else None)
    if check_mode or not changed:
        active, priority, used = predicted(seen, todo, params)
        fstab_text = todo.fstab_after
    else:
        real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        entry = next((s for s in read_swaps(proc_root) if s['path'] in (path, real)), None)
        active = entry is not None
        priority = entry['priority'] if entry else None
        used = entry['used_kb'] * 1024 if entry else 0
        fstab_text = read_text(fstab) or ''
    size = todo.size if params['state'] == 'present' else 0
    diff = [{'before_header': '%s (swap file)' % path, 'after_header': '%s (swap file)' % path,
             'before': before, 'after': summary(path, size, active, priority)}]
    if todo.fstab_changed:
        diff.append({'before_header': fstab, 'after_header': fstab,
                     'before': seen.fstab_before or '', 'after': todo.fstab_after})
    return dict(changed=changed, path=path, size_bytes=size, active=active, priority=priority,
                used_bytes=used, fstab_line=current_line(fstab_text, path), actions=todo.actions, diff=diff)
