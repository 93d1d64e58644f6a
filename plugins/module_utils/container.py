# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is this host a container sharing someone else's kernel?

Private to the oomguard.memory collection: no compatibility promise to other code.

Swap and vm.* sysctls belong to the kernel: inside a container they either fail (unprivileged)
or change the host for every other container (privileged). Signals, strongest first:
``container=`` in PID 1's environment (systemd's convention: podman, LXC, nspawn),
/run/.containerenv (podman; /run is a fresh tmpfs each start, so it cannot be stale),
/.dockerenv (docker). /.dockerenv is a plain file that survives in images exported from a
container into a VM, so it only counts when / also looks like a container root: an overlay-like
filesystem, or a bind of a sub-directory instead of the root of a block device.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.oomguard.memory.plugins.module_utils.procfs import path_in

CONTAINER_ROOT_FSTYPES = ('overlay', 'aufs', 'fuse-overlayfs', 'fuse.fuse-overlayfs', 'shiftfs')


def _read(root, path):
    try:
        with open(path_in(root, path), 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')
    except (IOError, OSError):
        return None


def parse_root_mount(mountinfo_text):
    """(fstype, mount root) of the last '/' mount in /proc/self/mountinfo, or (None, None)."""
    found = (None, None)
    for line in (mountinfo_text or '').splitlines():
        left, sep, right = line.partition(' - ')
        fields = left.split()
        if not sep or len(fields) < 5 or fields[4] != '/':
            continue
        found = (right.split()[0] if right.split() else None, fields[3])
    return found


def detect_container(root='/'):
    """{'container': kind, 'evidence': sentence} or {'container': None, 'evidence': sentence}."""
    environ = _read(root, '/proc/1/environ')
    if environ:
        for item in environ.split('\0'):
            if item.startswith('container=') and item[len('container='):]:
                kind = item[len('container='):]
                return {'container': kind, 'evidence': 'PID 1 has container=%s in its environment' % kind}
    if os.path.exists(path_in(root, '/run/.containerenv')):
        return {'container': 'podman', 'evidence': '/run/.containerenv exists'}
    if os.path.exists(path_in(root, '/.dockerenv')):
        fstype, mount_root = parse_root_mount(_read(root, '/proc/self/mountinfo'))
        if fstype is None or fstype in CONTAINER_ROOT_FSTYPES or mount_root != '/':
            return {'container': 'docker', 'evidence': '/.dockerenv exists and / is %s (mounted from %s)'
                    % (fstype or 'unknown', mount_root or 'unknown')}
        return {'container': None, 'evidence': '/.dockerenv exists but / is the root of a %s filesystem, '
                'so it is a stale marker (an image exported from a container), not a container' % fstype}
    return {'container': None, 'evidence': 'no container marker found'}


def skip_reason(in_container, root, thing, where):
    """The warning a module skips with when ``in_container`` is 'skip' and this host is a
    container, else None. ``thing`` is what belongs to the shared kernel, ``where`` what to do."""
    if in_container != 'skip':
        return None
    found = detect_container(root)
    if not found['container']:
        return None
    return ('skipped: this host is a %s container (%s); %s belongs to the kernel it shares, so %s'
            % (found['container'], found['evidence'], thing, where))
