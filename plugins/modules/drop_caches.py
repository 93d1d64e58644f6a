#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: drop_caches
short_description: Drop the clean page cache now, and say what it freed
version_added: 0.1.0
description:
  - Writes V(1) to C(/proc/sys/vm/drop_caches), which drops the clean page cache only (not slab objects such as
    dentries and inodes, which V(2) and V(3) would drop), after a C(sync) so that dirty pages become clean and
    droppable.
  - "What it frees: clean file pages nobody has mapped. What it does not free: memory of processes (anonymous
    memory, the usual cause of an OOM kill), dirty or writeback pages, pages mapped or locked by processes,
    tmpfs and shared memory, kernel slab. The kernel drops clean cache by itself under pressure, so this mostly
    turns cache into C(MemFree) sooner; the files read again afterwards cost disk reads."
  - Returns C(Cached) and C(MemAvailable) before and after, so the effect is measured, not assumed.
  - The action is one-shot, not a state; a run always reports C(changed=true).
author: oomguard developers (@oomguard)
extends_documentation_fragment: [oomguard.memory.attributes.platform]
options:
  sync:
    description:
      - Run C(sync) first, so dirty pages are written back and can be dropped too. On a host whose disks are
        stalled, V(false) avoids waiting on them.
    type: bool
    default: true
attributes:
  check_mode:
    description: Reports the steps it would take and the page cache it would act on; writes nothing.
    support: full
  diff_mode:
    description: Nothing persistent changes; RV(before) and RV(after) show the effect.
    support: none
notes:
  - Needs root, and a writable C(/proc/sys) (not the case in most containers).
seealso:
  - module: oomguard.memory.memory_state
'''

EXAMPLES = r'''
- name: Drop the page cache
  oomguard.memory.drop_caches:
  register: dropped

- name: Show what it freed
  ansible.builtin.debug:
    msg: "{{ dropped.freed_kb }} kB of page cache dropped; {{ dropped.note }}"
'''

RETURN = r'''
before:
  description: Cached and MemAvailable (kB) before.
  returned: always
  type: dict
  sample: {cached_kb: 8388608, mem_available_kb: 10485760}
after:
  description: Cached and MemAvailable (kB) after (the same as RV(before) in check mode).
  returned: always
  type: dict
  sample: {cached_kb: 1048576, mem_available_kb: 10600000}
freed_kb:
  description: How much the page cache shrank (kB); 0 in check mode.
  returned: always
  type: int
actions:
  description: The steps taken, or that would be taken in check mode.
  returned: always
  type: list
  elements: str
  sample: [sync, "write 1 to /proc/sys/vm/drop_caches (clean page cache only)"]
note:
  description: What dropping the page cache does and does not free.
  returned: always
  type: str
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.oomguard.memory.plugins.module_utils.procfs import ProcError, path_in, read_meminfo

# Tests point /proc at a fake tree; never a user option.
ROOT = '/'
NOTE = ('page cache only: clean file pages are freed; process memory (anonymous), dirty and mapped pages, '
        'tmpfs/shared memory and kernel slab are not; the kernel would have reclaimed this cache under pressure '
        'anyway, and files read again cost disk reads')


def argument_spec():
    return dict(sync=dict(type='bool', default=True))


def sample():
    info = read_meminfo(ROOT)
    return {'cached_kb': info.get('Cached'), 'mem_available_kb': info.get('MemAvailable')}


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    target = path_in(ROOT, '/proc/sys/vm/drop_caches')
    actions = (['sync'] if module.params['sync'] else []) + ['write 1 to /proc/sys/vm/drop_caches (clean page cache only)']
    try:
        before = sample()
    except ProcError as exc:
        module.fail_json(msg=str(exc))
    if not os.path.exists(target):
        module.fail_json(msg='%s does not exist; this kernel cannot drop caches on request' % target)
    if module.check_mode:
        module.exit_json(changed=True, before=before, after=before, freed_kb=0, actions=actions, note=NOTE)
    if module.params['sync']:
        os.sync()
    try:
        with open(target, 'w') as handle:
            handle.write('1\n')
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot write 1 to %s: %s; it needs root and a writable /proc/sys (not a container)'
                         % (target, exc.strerror))
    try:
        after = sample()
    except ProcError as exc:
        module.fail_json(msg=str(exc))
    freed = max(0, (before['cached_kb'] or 0) - (after['cached_kb'] or 0))
    module.exit_json(changed=True, before=before, after=after, freed_kb=freed, actions=actions, note=NOTE)


if __name__ == '__main__':
    main()
