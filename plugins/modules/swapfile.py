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


import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.oomguard.memory.plugins.module_utils import swap
from ansible_collections.oomguard.memory.plugins.module_utils.container import skip_reason
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.files import host_lock
from ansible_collections.oomguard.memory.plugins.module_utils.params import check_path, refuse_bools

# Module-level so unit tests can point them at fake files; never user options.
FSTAB = '/etc/fstab'
PROC_ROOT = '/'
HOST_ROOT = '/'
LOCK_TIMEOUT = 900


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


def skip_in_container(module):
    """Exit with skipped=true when the host is a container and in_container=skip."""
    msg = skip_reason(module.params['in_container'], HOST_ROOT, 'swap',
                      'manage %s on the host itself' % module.params['path'])
    if msg:
        module.warn(msg)
        module.exit_json(changed=False, skipped=True, msg=msg, path=module.params['path'], size_bytes=0,
                         active=False, priority=None, used_bytes=0, fstab_line=None, actions=[])


def run(module, path):
    """Observe, plan and (unless check mode) apply; the module's result."""
    def command(argv):
        return module.run_command(argv, environ_update={'LC_ALL': 'C'})
    seen = swap.observe(path, PROC_ROOT, FSTAB, module.warn)
    todo = swap.plan(seen, module.params, FSTAB)
    changed = bool(todo.actions)
    if changed and not module.check_mode:
        swap.Applier(seen, todo, module.params, command, FSTAB).apply()
    for warning in todo.warnings:
        module.warn(warning)
    return swap.result(seen, todo, module.params, changed, module.check_mode, PROC_ROOT, FSTAB)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[('state', 'present', ['size'])])
    try:
        refuse_bools(module.params, ['priority'])
        path = os.path.normpath(check_path('path', module.params['path']))
        swap.check_path(path)
        skip_in_container(module)
        if module.check_mode:
            result = run(module, path)
        else:
            with host_lock('swap', timeout=LOCK_TIMEOUT):
                result = run(module, path)
    except OomguardError as exc:
        module.fail_json(msg=str(exc), actions=[])
    except (IOError, OSError) as exc:
        module.fail_json(msg='path: %s: %s' % (getattr(exc, 'filename', None) or module.params['path'],
                                               exc.strerror or exc), actions=[])
    module.exit_json(**result)


if __name__ == '__main__':
    main()
