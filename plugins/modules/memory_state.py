#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: memory_state
short_description: A quick snapshot of a host's memory, swap and memory pressure, as evidence
version_added: 0.1.0
description:
  - Reads C(/proc/meminfo), C(/proc/swaps), C(/proc/pressure/memory) (PSI) and the C(oom_kill) count of
    C(/proc/vmstat) and returns them, in kB, with the time they were read.
  - Meant for before/after evidence around a change (the C(oomguard.memory.remediate) role and the drill playbook
    use it). It reads no logs, so it takes milliseconds; M(oomguard.memory.oom_facts) is the full picture.
  - With O(low_threshold), also says whether C(MemAvailable) is under it.
  - Read-only.
author: oomguard developers (@oomguard)
extends_documentation_fragment: [oomguard.memory.attributes.facts]
attributes:
  facts:
    description: Returns plain values to register, not facts.
    support: none
options:
  low_threshold:
    description:
      - A size (V(512M)) or a percentage of C(MemTotal) (V(10%)); RV(low) is true when C(MemAvailable) is under it.
    type: str
seealso:
  - module: oomguard.memory.oom_facts
'''

EXAMPLES = r'''
- name: Is the host short of memory?
  oomguard.memory.memory_state:
    low_threshold: 10%
  register: memory

- name: Say so
  ansible.builtin.debug:
    msg: "MemAvailable {{ memory.state.mem_available_kb }} kB, low: {{ memory.low }}"
'''

RETURN = r'''
state:
  description: The snapshot.
  returned: always
  type: dict
  contains:
    time:
      description: When it was read, UTC, ISO-8601.
      type: str
      sample: '2026-11-30T01:02:03Z'
    mem_total_kb: {description: MemTotal., type: int}
    mem_available_kb: {description: MemAvailable., type: int}
    cached_kb: {description: Cached (page cache)., type: int}
    swap_total_kb: {description: SwapTotal., type: int}
    swap_free_kb: {description: SwapFree., type: int}
    swaps:
      description: The active swap areas.
      type: list
      elements: dict
      sample: [{path: /swapfile, size_kb: 2097148, used_kb: 0}]
    pressure:
      description: Memory PSI C(some) and C(full) (avg10, avg60, avg300, total), or null without PSI.
      type: dict
    oom_kill:
      description: The kernel's count of OOM kills since boot, or null when it does not count them.
      type: int
low:
  description: Whether MemAvailable is under O(low_threshold); null without it.
  returned: always
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.oomguard.memory.plugins.module_utils.evidence import available_low, memory_evidence
from ansible_collections.oomguard.memory.plugins.module_utils.procfs import ProcError
from ansible_collections.oomguard.memory.plugins.module_utils.sizes import SizeError

# Tests point the /proc readers at a fake tree; never a user option.
ROOT = '/'


def argument_spec():
    return dict(low_threshold=dict(type='str'))


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        state = memory_evidence(ROOT, module.warn)
        low = None
        if module.params['low_threshold'] is not None:
            low = available_low(state, module.params['low_threshold'])
    except (ProcError, SizeError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, state=state, low=low)


if __name__ == '__main__':
    main()
