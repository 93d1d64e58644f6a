#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: swapfile
short_description: Create, resize, activate and remove a swap file safely
version_added: 0.1.0
description:
  - Manages one swap file, its activation (C(swapon)) and its C(/etc/fstab) entry.
  - Sizes are compared as numbers of bytes, so a file of the right size is never rebuilt. A file of another size is
    resized (swapoff, rebuild, swapon) only when the swap in use on it fits back into RAM.
  - The file is built under a temporary name in its own directory (C(.<name>.oomguard-swap-tmp)), fully allocated
    (no holes), made a swap area and only then renamed into place; a run killed halfway leaves no active half-file
    and no C(/etc/fstab) line pointing at a missing file, and the next run removes what it left behind.
  - The C(/etc/fstab) edit is atomic and leaves every other line byte for byte as it was.
  - Two runs at once on one host are serialised by a host-wide lock.
  - "Refuses, changing nothing: a path on tmpfs, ramfs, overlay, NFS, CIFS and similar filesystems, a symlink,
    a directory, a device, anything under C(/proc), C(/sys) or C(/dev), and an existing non-empty file that is
    not already a swap area (unless O(force))."
  - "Swap off is safe when the swap in use on the file, plus a margin (the larger of 128 MiB and 5% of MemTotal),
    fits in MemAvailable. Resizing, changing the priority of an active file, O(enabled=false) and O(state=absent)
    need a swap off and are refused otherwise, unless O(force)."
author: oomguard developers (@oomguard)
extends_documentation_fragment: [oomguard.memory.attributes]
options:
  path:
    description:
      - Absolute path of the swap file.
    type: path
    required: true
  size:
    description:
      - Size of the swap file, in bytes or with a unit (V(512M), V(2G), V(1.5G); K, M, G are powers of 1024),
        rounded up to a whole MiB.
      - "V(auto) sizes it from the host's RAM (MemTotal): below 2 GiB of RAM, twice the RAM; from 2 GiB to 8 GiB,
        4 GiB; from 8 GiB to 64 GiB, half the RAM; above 64 GiB, 32 GiB. The result is capped so that O(reserve)
        stays free on the filesystem. An existing swap area at O(path) is kept as it is when its size is at most
        the table size and at least what would fit if its own space were free, so the same host gets the same
        answer run after run and a disk filling up never triggers a resize."
      - Required when O(state=present).
    type: str
  state:
    description:
      - V(present) makes sure the swap file exists with O(size); V(absent) swaps it off, removes its
        C(/etc/fstab) entry and deletes it.
    type: str
    choices: [present, absent]
    default: present
  priority:
    description:
      - Swap priority (C(swapon -p)), -1 to 32767. Unset leaves it to the kernel and accepts any priority
        already in use or in C(/etc/fstab).
    type: int
  enabled:
    description:
      - Whether the swap file is active now. V(false) swaps it off (if that is safe) and keeps the file.
    type: bool
    default: true
  fstab:
    description:
      - Whether C(/etc/fstab) has an entry that activates the file at boot. V(false) removes such an entry.
    type: bool
    default: true
  method:
    description:
      - How the file's blocks are allocated. V(auto) uses C(fallocate) on ext4 and xfs, where it allocates real
        blocks, and C(dd) (writing zeros) elsewhere; if C(fallocate) leaves holes it falls back to C(dd).
      - On btrfs the empty file is first made no-copy-on-write (C(chattr +C)), which the kernel requires of swap
        files there.
    type: str
    choices: [auto, fallocate, dd]
    default: auto
  reserve:
    description:
      - Free space that must remain on the filesystem after the file is created, in bytes, with a unit, or as a
        percentage of the filesystem's size (V(10%)). Checked before a single byte is written.
    type: str
    default: 10%
  force:
    description:
      - Swap off even when the swap in use does not fit in available RAM, and replace an existing non-empty file
        that is not a swap area.
    type: bool
    default: false
  in_container:
    description:
      - What to do when the host is a container (C(container=) in PID 1's environment, C(/run/.containerenv), or
        C(/.dockerenv) with an overlay-like root filesystem). Swap belongs to the kernel the container shares.
      - V(skip) changes nothing and returns C(skipped=true) with a warning; V(manage) manages swap anyway (a
        privileged container then changes the swap of the whole machine).
    type: str
    choices: [skip, manage]
    default: skip
notes:
  - Needs C(mkswap), C(swapon) and C(swapoff) (util-linux), and C(fallocate) or C(dd).
seealso:
  - module: oomguard.memory.swappiness
'''

EXAMPLES = r'''
- name: A 2 GiB swap file, active now and at boot
  oomguard.memory.swapfile:
    path: /swapfile
    size: 2G

- name: A swap file sized from RAM, keeping 20% of the disk free
  oomguard.memory.swapfile:
    path: /swapfile
    size: auto
    reserve: 20%

- name: Prefer this swap file over others
  oomguard.memory.swapfile:
    path: /var/swap/fast
    size: 1G
    priority: 100

- name: Remove the swap file (refused if its contents do not fit back into RAM)
  oomguard.memory.swapfile:
    path: /swapfile
    state: absent
'''

RETURN = r'''
path:
  description: The swap file's path.
  returned: always
  type: str
  sample: /swapfile
size_bytes:
  description: Size of the swap file after the run (predicted in check mode); 0 when it is absent.
  returned: always
  type: int
  sample: 2147483648
active:
  description: Whether the file is an active swap area after the run (predicted in check mode).
  returned: always
  type: bool
  sample: true
priority:
  description: The swap priority after the run; null when the file is not active, or in check mode when the
    kernel will choose it.
  returned: always
  type: int
  sample: -2
used_bytes:
  description: Swap in use on the file (from /proc/swaps) after the run.
  returned: always
  type: int
  sample: 0
fstab_line:
  description: The /etc/fstab line for the file after the run, or null when there is none.
  returned: always
  type: str
  sample: /swapfile none swap sw 0 0
actions:
  description: The steps taken, or that would be taken in check mode, in order.
  returned: always
  type: list
  elements: str
  sample: ["create /swapfile (2G, fallocate)", "mkswap /swapfile", "swapon /swapfile", "add /swapfile to /etc/fstab"]
skipped:
  description: True when nothing was done because the host is a container and O(in_container=skip).
  returned: when skipped
  type: bool
  sample: true
'''

import errno
import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.oomguard.memory.plugins.module_utils.container import detect_container
from ansible_collections.oomguard.memory.plugins.module_utils.files import (
    FileError, atomic_write, fsync_dir, host_lock, read_text)
from ansible_collections.oomguard.memory.plugins.module_utils.fstab import current_line, set_swap_entry
from ansible_collections.oomguard.memory.plugins.module_utils.procfs import (
    ProcError, mount_of, read_meminfo, read_mounts, read_swaps)
from ansible_collections.oomguard.memory.plugins.module_utils.sizes import SizeError, format_size, parse_size

# Module-level so unit tests can point them at fake files; never user options.
FSTAB = '/etc/fstab'
PROC_ROOT = '/'
HOST_ROOT = '/'
LOCK_TIMEOUT = 900

MIB = 1024 ** 2
GIB = 1024 ** 3
TEMP_SUFFIX = '.oomguard-swap-tmp'
REFUSED_FSTYPES = ('tmpfs', 'ramfs', 'overlay', 'aufs', 'nfs', 'nfs4', 'cifs', 'smb3', 'smbfs', '9p', 'squashfs',
                   'iso9660', 'fuse', 'fuseblk', 'ceph', 'glusterfs', 'virtiofs', 'zfs', 'proc', 'sysfs', 'devtmpfs')
FALLOCATE_FSTYPES = ('ext4', 'xfs', 'btrfs')
FORBIDDEN_TREES = ('/proc', '/sys', '/dev')
SWAP_MAGICS = (b'SWAPSPACE2', b'SWAP-SPACE')
PAGE_SIZES = (4096, 8192, 16384, 65536)


def argument_spec():
    return dict(
        path=dict(type='path', required=True),
        size=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        priority=dict(type='int'),
        enabled=dict(type='bool', default=True),
        fstab=dict(type='bool', default=True),
        method=dict(type='str', default='auto', choices=['auto', 'fallocate', 'dd']),
        reserve=dict(type='str', default='10%'),
        force=dict(type='bool', default=False),
        in_container=dict(type='str', default='skip', choices=['skip', 'manage']),
    )


def auto_size(mem_total):
    """The documented table: swap size in bytes for ``mem_total`` bytes of RAM (rounded up to MiB)."""
    if mem_total < 2 * GIB:
        size = 2 * mem_total
    elif mem_total < 8 * GIB:
        size = 4 * GIB
    elif mem_total < 64 * GIB:
        size = mem_total // 2
    else:
        size = 32 * GIB
    return round_mib(size)


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
    return os.path.join(os.path.dirname(path), '.%s%s' % (os.path.basename(path), TEMP_SUFFIX))


class Refusal(Exception):
    """A request we will not carry out; str() is the sentence for the user."""


class SwapFile(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.path = os.path.normpath(module.params['path'])
        self.tmp = temp_path(self.path)
        self.actions = []
        self.warnings = []

    # ---- what is there

    def _stat(self, path):
        try:
            return os.lstat(path)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise Refusal('cannot inspect %s: %s' % (path, exc.strerror))

    def gather(self):
        path = self.path
        self.info = self._stat(path)
        self.kind = None
        self.is_swap = False
        if self.info is not None:
            mode = self.info.st_mode
            if stat.S_ISLNK(mode):
                self.kind = 'symlink'
            elif stat.S_ISDIR(mode):
                self.kind = 'directory'
            elif stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
                self.kind = 'device'
            elif stat.S_ISREG(mode):
                self.kind = 'file'
                self.is_swap = self._read_signature(path)
            else:
                self.kind = 'special file'
        self.tmp_info = self._stat(self.tmp)
        swaps = read_swaps(PROC_ROOT, warn=self.warnings.append)
        # /proc/swaps shows the resolved path: /var/tmp/x is /private/var/tmp/x if /var/tmp is a symlink.
        directory = os.path.realpath(os.path.dirname(path))
        names = (path, os.path.join(directory, os.path.basename(path)))
        tmp_names = (self.tmp, os.path.join(directory, os.path.basename(self.tmp)))
        self.active = next((s for s in swaps if s['path'] in names), None)
        self.tmp_active = next((s for s in swaps if s['path'] in tmp_names), None)
        self.meminfo = read_meminfo(PROC_ROOT)
        try:
            self.fstab_before = read_text(FSTAB)
        except FileError as exc:
            raise Refusal(str(exc))
        directory = os.path.dirname(path)
        self.dir_exists = os.path.isdir(directory)
        self.mount = mount_of(os.path.realpath(directory), read_mounts(PROC_ROOT)) if self.dir_exists else None

    def _read_signature(self, path):
        try:
            with open(path, 'rb') as handle:
                return has_swap_signature(handle.read(max(PAGE_SIZES)))
        except (IOError, OSError) as exc:
            raise Refusal('cannot read %s: %s' % (path, exc.strerror))

    # ---- plan

    def check_path(self):
        path = self.params['path']
        if not os.path.isabs(path):
            raise Refusal('path must be absolute, got %r' % path)
        if '\n' in path:
            raise Refusal('path %r contains a newline, which /etc/fstab cannot hold' % path)
        for tree in FORBIDDEN_TREES:
            if self.path == tree or self.path.startswith(tree + '/'):
                raise Refusal('refusing to manage a swap file at %s: it is under %s, which belongs to the kernel'
                              % (self.path, tree))
        if self.kind in ('symlink', 'directory', 'device', 'special file'):
            extra = ' (to %s)' % os.readlink(self.path) if self.kind == 'symlink' else ''
            raise Refusal('refusing to manage %s as a swap file: it is a %s%s; point path at a regular file'
                          % (self.path, self.kind, extra))

    def check_swapoff(self, why):
        """Fail unless swapping off the active file is safe (or forced)."""
        used = self.active['used_kb'] * 1024
        available = self.meminfo.get('MemAvailable', 0) * 1024
        margin = swapoff_margin(self.meminfo.get('MemTotal', 0) * 1024)
        if used + margin > available:
            if self.params['force']:
                self.warnings.append('forcing swapoff of %s with %s in use and %s of RAM available'
                                     % (self.path, format_size(used), format_size(available)))
                return
            raise Refusal('refusing to swapoff %s to %s: %s of swap is in use on it and only %s of RAM is available '
                          '(MemAvailable), which does not hold it plus a margin of %s; free memory first or use '
                          'force: true' % (self.path, why, format_size(used), format_size(available),
                                           format_size(margin)))

    def fs_space(self):
        directory = os.path.dirname(self.path)
        vfs = os.statvfs(directory)
        return vfs.f_bavail * vfs.f_frsize, vfs.f_blocks * vfs.f_frsize

    def reserve_bytes(self, total):
        try:
            return parse_size(self.params['reserve'], name='reserve', allow_percent=True, total=total)
        except SizeError as exc:
            raise Refusal(str(exc))

    def target_size(self):
        """The size in bytes the file must have (state=present)."""
        size = self.params['size']
        if size is None:
            raise Refusal('size is required with state=present; give a size such as 2G, or auto')
        if size.strip().lower() != 'auto':
            try:
                wanted = parse_size(size, name='size')
            except SizeError as exc:
                raise Refusal(str(exc))
            if wanted <= 0:
                raise Refusal('size: %r is zero; a swap file needs at least 1M' % size)
            return round_mib(wanted)
        table = auto_size(self.meminfo['MemTotal'] * 1024)
        free, total = self.fs_space()
        reserve = self.reserve_bytes(total)
        if self.is_swap:
            # Keep an existing swap area unless a better size is possible: counting its own space as free,
            # the same host gives the same answer run after run, and a filling disk never forces a resize.
            floor = min(table, (free + self.info.st_size - reserve) // MIB * MIB)
            if floor <= self.info.st_size <= table:
                return self.info.st_size
        # A new file is built next to any old one, so only the space free now counts.
        target = min(table, (free - reserve) // MIB * MIB)
        if target < 16 * MIB:
            raise Refusal('size auto: %s by the RAM table, but only %s of %s (%s) is free after keeping the reserve '
                          'of %s; free disk space or lower reserve'
                          % (format_size(table), format_size(max(target, 0)), self.mount['mountpoint'],
                             self.mount['fstype'], self.params['reserve']))
        return target

    def check_space(self, size):
        free, total = self.fs_space()
        reserve = self.reserve_bytes(total)
        if free - size < reserve:
            raise Refusal('not enough space for a %s swap file at %s: %s is free on %s (%s) and %s must stay free '
                          '(reserve %s); free disk space, choose a smaller size or lower reserve'
                          % (format_size(size), self.path, format_size(free), self.mount['mountpoint'],
                             self.mount['fstype'], format_size(reserve), self.params['reserve']))

    def choose_method(self):
        method = self.params['method']
        if method != 'auto':
            return method
        return 'fallocate' if self.mount and self.mount['fstype'] in FALLOCATE_FSTYPES else 'dd'

    def plan(self):
        p = self.params
        self.check_path()
        self.plan_leftover()
        if p['state'] == 'absent':
            return self.plan_absent()
        return self.plan_present()

    def plan_leftover(self):
        self.remove_tmp = False
        if self.tmp_info is None and self.tmp_active is None:
            return
        if self.tmp_info is not None and not stat.S_ISREG(self.tmp_info.st_mode):
            raise Refusal('refusing to clean up %s: it is not a regular file, so it is not a leftover of ours'
                          % self.tmp)
        self.remove_tmp = True
        if self.tmp_active:
            self.actions.append('swapoff leftover %s' % self.tmp)
        self.actions.append('remove leftover %s' % self.tmp)

    def plan_present(self):
        p = self.params
        if p['priority'] is not None and not -1 <= p['priority'] <= 32767:
            raise Refusal('priority must be between -1 and 32767, got %d' % p['priority'])
        if not self.dir_exists:
            raise Refusal('cannot create %s: directory %s does not exist' % (self.path, os.path.dirname(self.path)))
        fstype = self.mount['fstype'] if self.mount else 'unknown'
        if fstype in REFUSED_FSTYPES or fstype.startswith('fuse.'):
            raise Refusal('refusing to put a swap file at %s: it is on %s (mounted at %s), which the kernel cannot '
                          'swap to; choose a path on a local disk filesystem such as ext4 or xfs'
                          % (self.path, fstype, self.mount['mountpoint']))
        size = self.target_size()
        self.size = size
        build_reason = None
        if self.kind is None:
            build_reason = 'create'
        elif not self.is_swap:
            if self.info.st_size > 0 and not p['force']:
                raise Refusal('refusing to make %s a swap file: it holds %s of data that is not a swap area; remove '
                              'it, choose another path, or use force: true to overwrite it'
                              % (self.path, format_size(self.info.st_size)))
            build_reason = 'replace'
        elif self.info.st_size != size:
            build_reason = 'resize'
        elif self.active is None and self.info.st_blocks * 512 < self.info.st_size:
            build_reason = 'rebuild (it has holes, which swapon refuses)'
        self.build = build_reason
        swapoff = None
        if self.active is not None:
            if build_reason:
                swapoff = 'resize it' if build_reason == 'resize' else 'replace it'
            elif not p['enabled']:
                swapoff = 'disable it'
            elif not priority_matches(self.active['priority'], p['priority']):
                swapoff = 'change its priority to %d' % p['priority']
        self.swapoff = swapoff is not None
        if swapoff:
            self.check_swapoff(swapoff)
            self.actions.append('swapoff %s (to %s)' % (self.path, swapoff))
        self.fix_mode = self.fix_owner = False
        if build_reason:
            self.check_space(size)
            self.method = self.choose_method()
            verb = build_reason.split(' ', 1)[0]
            self.actions.append('%s %s (%s, %s)' % (verb, self.path, format_size(size), self.method))
            if build_reason.startswith('rebuild'):
                self.warnings.append('%s has holes; rebuilding it' % self.path)
            self.actions.append('mkswap %s' % self.path)
        else:
            self.fix_mode = stat.S_IMODE(self.info.st_mode) != 0o600
            self.fix_owner = (self.info.st_uid, self.info.st_gid) != (0, 0)
            if self.fix_mode:
                self.actions.append('chmod 0600 %s (was %04o)' % (self.path, stat.S_IMODE(self.info.st_mode)))
            if self.fix_owner:
                self.actions.append('chown root:root %s (was %d:%d)' % (self.path, self.info.st_uid, self.info.st_gid))
        self.swapon = p['enabled'] and (self.active is None or self.swapoff)
        if self.swapon:
            self.actions.append('swapon %s' % self.path + ('' if p['priority'] in (None, -1) else ' -p %d' % p['priority']))
        self.plan_fstab(present=p['fstab'])

    def plan_absent(self):
        if self.kind == 'file' and not self.is_swap and self.info.st_size > 0 and not self.params['force']:
            raise Refusal('refusing to delete %s: it holds %s of data that is not a swap area; use force: true to '
                          'delete it anyway' % (self.path, format_size(self.info.st_size)))
        self.size = 0
        self.build = None
        self.swapoff = self.active is not None
        self.swapon = False
        if self.swapoff:
            self.check_swapoff('remove it')
            self.actions.append('swapoff %s (to remove it)' % self.path)
        self.plan_fstab(present=False)
        self.delete = self.kind == 'file'
        if self.delete:
            self.actions.append('delete %s' % self.path)

    def plan_fstab(self, present):
        before = self.fstab_before or ''
        after = set_swap_entry(before, self.path, self.params['priority'], present=present)
        self.fstab_after = after
        self.fstab_changed = after != before
        if self.fstab_changed:
            verb = 'add' if present and current_line(before, self.path) is None else (
                'update' if present else 'remove')
            self.actions.append('%s %s %s %s' % (verb, self.path, 'in' if verb == 'update' else
                                                 ('to' if verb == 'add' else 'from'), FSTAB))

    # ---- apply

    def run(self, argv):
        rc, out, err = self.module.run_command(argv, environ_update={'LC_ALL': 'C'})
        if rc != 0:
            raise Refusal('%s failed (rc=%d): %s' % (' '.join(argv), rc, (err or out).strip()))
        return out

    def apply(self):
        p = self.params
        if self.remove_tmp:
            if self.tmp_active:
                self.run(['swapoff', self.tmp])
            if self.tmp_info is not None:
                os.unlink(self.tmp)
                fsync_dir(os.path.dirname(self.tmp))
        if self.swapoff:
            self.run(['swapoff', self.path])
        if p['state'] == 'absent':
            self.write_fstab()
            if self.delete:
                os.unlink(self.path)
                fsync_dir(os.path.dirname(self.path))
            return
        if self.build:
            self.create()
        else:
            if self.fix_mode:
                os.chmod(self.path, 0o600)
            if self.fix_owner:
                os.chown(self.path, 0, 0)
        if self.swapon:
            argv = ['swapon']
            if p['priority'] is not None and p['priority'] >= 0:
                argv += ['-p', str(p['priority'])]
            self.run(argv + [self.path])
        self.write_fstab()

    def write_fstab(self):
        if self.fstab_changed:
            atomic_write(FSTAB, self.fstab_after, mode=0o644)

    def create(self):
        """Build the file under the temporary name, then rename it into place."""
        tmp, size = self.tmp, self.size
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.fchown(fd, 0, 0)
        finally:
            os.close(fd)
        try:
            if self.mount and self.mount['fstype'] == 'btrfs':
                self.run(['chattr', '+C', tmp])
            method = self.method
            if method == 'fallocate':
                self.run(['fallocate', '-l', str(size), tmp])
                if os.stat(tmp).st_blocks * 512 < size:
                    if self.params['method'] == 'fallocate':
                        raise Refusal('fallocate left holes in %s on %s; use method: dd'
                                      % (tmp, self.mount['fstype']))
                    method = 'dd'
            if method == 'dd':
                self.run(['dd', 'if=/dev/zero', 'of=%s' % tmp, 'bs=1M', 'count=%d' % (size // MIB),
                          'conv=fsync', 'status=none'])
            self.run(['mkswap', tmp])
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, self.path)
            fsync_dir(os.path.dirname(self.path))
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    # ---- report

    def summary(self, size, active, priority):
        return 'path: %s\nsize: %s\nactive: %s\npriority: %s\n' % (
            self.path, format_size(size) if size else 'none', 'yes' if active else 'no',
            'kernel default' if priority is None else priority)

    def result(self, changed):
        p = self.params
        check = self.module.check_mode
        before_size = self.info.st_size if self.kind == 'file' else 0
        before = self.summary(before_size, self.active is not None, self.active['priority'] if self.active else None)
        if check or not changed:
            active = self.active is not None and not self.swapoff or self.swapon
            if not active:
                priority, used = None, 0
            elif self.swapon:
                priority, used = (None if p['priority'] in (None, -1) else p['priority']), 0
            else:
                priority, used = self.active['priority'], self.active['used_kb'] * 1024
            fstab_text = self.fstab_after
        else:
            real = os.path.join(os.path.realpath(os.path.dirname(self.path)), os.path.basename(self.path))
            entry = next((s for s in read_swaps(PROC_ROOT) if s['path'] in (self.path, real)), None)
            active = entry is not None
            priority = entry['priority'] if entry else None
            used = entry['used_kb'] * 1024 if entry else 0
            fstab_text = read_text(FSTAB) or ''
        size = self.size if p['state'] == 'present' else 0
        after = self.summary(size, active, priority)
        diff = [{'before_header': '%s (swap file)' % self.path, 'after_header': '%s (swap file)' % self.path,
                 'before': before, 'after': after}]
        if self.fstab_changed:
            diff.append({'before_header': FSTAB, 'after_header': FSTAB,
                         'before': self.fstab_before or '', 'after': self.fstab_after})
        return dict(changed=changed, path=self.path, size_bytes=size, active=active, priority=priority,
                    used_bytes=used, fstab_line=current_line(fstab_text, self.path), actions=self.actions,
                    diff=diff)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[('state', 'present', ['size'])])
    p = module.params
    if p['in_container'] == 'skip':
        found = detect_container(HOST_ROOT)
        if found['container']:
            msg = ('skipped: this host is a %s container (%s); swap belongs to the kernel it shares, so manage %s '
                   'on the host itself' % (found['container'], found['evidence'], p['path']))
            module.warn(msg)
            module.exit_json(changed=False, skipped=True, msg=msg, path=p['path'], size_bytes=0, active=False,
                             priority=None, used_bytes=0, fstab_line=None, actions=[])
    swap = SwapFile(module)
    try:
        if module.check_mode:
            swap.gather()
            swap.plan()
            changed = bool(swap.actions)
        else:
            with host_lock('swap', timeout=LOCK_TIMEOUT):
                swap.gather()
                swap.plan()
                changed = bool(swap.actions)
                if changed:
                    swap.apply()
        result = swap.result(changed)
    except (Refusal, ProcError, FileError) as exc:
        module.fail_json(msg=str(exc), actions=swap.actions)
    except (IOError, OSError) as exc:
        module.fail_json(msg='%s: %s' % (getattr(exc, 'filename', None) or p['path'], exc.strerror or exc),
                         actions=swap.actions)
    for warning in swap.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
