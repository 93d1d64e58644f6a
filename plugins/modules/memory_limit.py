# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: memory_limit
short_description: Set memory limits on a systemd unit or a cgroup (cgroup v1 and v2)
version_added: 0.1.0
description:
  - Sets the hard limit, the throttling limit, the swap limit and memory protection of one
    systemd unit (through a drop-in of ours and C(systemctl daemon-reload)) or of one raw cgroup
    (by writing the memory controller's files directly), so a leaking service hits its own
    ceiling and is OOM-killed alone instead of exhausting the host.
  - Detects whether the memory controller is on cgroup v1 or v2 (also on hybrid hosts) and
    reports which one it used.
  - Refuses a O(max) or O(high) below the cgroup's current usage (which would reclaim or
    OOM-kill the workload the moment it is applied) unless O(force=true).
  - Idempotent; kernel values are compared after the kernel's own rounding down to whole pages.
  - A raw cgroup lives only until the next reboot (or until it is removed); nothing can persist
    it. Use O(unit) for a lasting limit. The module warns when it changes a raw cgroup.
author: oomguard developers (@oomguard)
extends_documentation_fragment: [oomguard.memory.attributes, oomguard.memory.systemd]
options:
  unit:
    description:
      - The systemd unit to limit (a C(.service), C(.slice) or C(.scope)).
      - Exactly one of O(unit) and O(cgroup) is required.
    type: str
  cgroup:
    description:
      - A cgroup path relative to the memory controller's root, for example C(batch/jobs)
        (on cgroup v1 below C(/sys/fs/cgroup/memory), on v2 below the unified mount).
      - Exactly one of O(unit) and O(cgroup) is required.
    type: str
  max:
    description:
      - The hard limit. Above it the kernel reclaims and then OOM-kills inside the cgroup.
      - Bytes, a size with K, M, G, T (powers of 1024), a percentage of RAM such as C(25%), or
        C(infinity).
      - v2 C(memory.max), v1 C(memory.limit_in_bytes), systemd C(MemoryMax=) (systemd older than
        240 on cgroup v1 gets C(MemoryLimit=)).
    type: str
  high:
    description:
      - The throttling limit. Above it the kernel reclaims hard and slows the cgroup down.
      - Must not exceed the hard limit (O(max), or the current one); V(infinity) is always accepted.
      - v2 C(memory.high), systemd C(MemoryHigh=).
      - On cgroup v1 mapped to C(memory.soft_limit_in_bytes), which is only an approximation (v1
        reclaims down to the soft limit only when the whole host is short of memory).
    type: str
  swap_max:
    description:
      - How much swap the cgroup may use.
      - v2 C(memory.swap.max), systemd C(MemorySwapMax=).
      - On cgroup v1 written as C(memory.memsw.limit_in_bytes) = O(max) + O(swap_max), which needs
        the kernel's swap accounting (without it the module fails) and a hard limit, so O(swap_max)
        on a v1 cgroup without O(max) and without a current limit is refused.
    type: str
  low:
    description:
      - Best-effort protection; memory below it is reclaimed only when nothing else can be.
      - v2 C(memory.low), systemd C(MemoryLow=). Not available on cgroup v1 (a raw v1 cgroup
        fails with an error). Must not exceed the hard limit.
    type: str
  min:
    description:
      - Hard protection; memory below it is never reclaimed.
      - v2 C(memory.min), systemd C(MemoryMin=). Not available on cgroup v1. Must not exceed
        the hard limit.
    type: str
  oom_group:
    description:
      - Whether an OOM kill takes the whole cgroup down together instead of one process.
      - v2 C(memory.oom.group). For a O(unit), V(true) writes C(OOMPolicy=kill) (systemd then
        sets C(memory.oom.group) itself) and V(false) leaves the unit's default policy; only
        services and scopes have an OOM policy. Not available on cgroup v1.
    type: bool
  persist:
    description:
      - For a O(unit), write the limits into a drop-in of ours,
        C(/etc/systemd/system/<unit>.d/50-oomguard-memory.conf), so they survive restarts and
        reboots. The drop-in holds exactly the limits of this task.
      - With V(false) the limits of a unit are set with C(systemctl set-property --runtime) and
        are lost at reboot.
      - A raw O(cgroup) cannot be persisted by any means (cgroupfs is rebuilt at every boot);
        V(true) with O(cgroup) only adds a warning saying so. Defaults to V(true) for a O(unit)
        and V(false) for a O(cgroup).
    type: bool
  runtime:
    description:
      - Apply the limits to the running cgroup now. For a O(unit) with O(persist=true) this runs
        C(systemctl daemon-reload) after the drop-in changed (systemd applies the new limits to
        the running unit); with V(false) the drop-in is written and takes effect at the next
        daemon-reload or reboot.
      - A raw O(cgroup) has nothing but its runtime state, so V(false) is refused there.
    type: bool
    default: true
  create:
    description:
      - For a O(cgroup), create it (and its missing parents) when it does not exist. On cgroup v2
        the memory controller is first enabled in each parent's C(cgroup.subtree_control).
      - Without it, limits on a missing cgroup are refused.
    type: bool
    default: false
  pids:
    description:
      - For a O(cgroup), processes to move into it (after the limits are set). On cgroup v1 the
        whole thread group of each PID moves.
      - Kernel threads are refused. When the kernel refuses a move, the processes moved by this
        run go back, and a cgroup this run created is removed again.
    type: list
    elements: int
    default: []
  force:
    description:
      - Apply a O(max) or O(high) below the cgroup's current usage anyway. The kernel then
        reclaims, and on v2 may OOM-kill at once; on v1 it refuses the write when it cannot
        reclaim enough (C(EBUSY)), which the module reports.
    type: bool
    default: false
  state:
    description:
      - V(present) sets the given limits.
      - V(absent) lifts every limit. For a O(unit) it removes our drop-in (or resets the runtime
        properties with O(persist=false)); for a O(cgroup) it puts every limit back to the
        kernel default and removes the cgroup when this module created it and it holds no
        processes and no child cgroups. Limit options are refused with V(absent).
    type: str
    choices: [present, absent]
    default: present
notes:
  - The kernel keeps limits in whole pages; values read back rounded down, and the module
    compares after the same rounding, so a second run reports no change.
  - On cgroup v1, C(infinity) is written as C(-1) and reads back as 9223372036854771712.
  - systemd on the legacy (v1) hierarchy applies only C(MemoryMax=)/C(MemoryLimit=); the module
    warns that C(MemoryHigh=), C(MemorySwapMax=), C(MemoryLow=) and C(MemoryMin=) take effect
    only on the unified hierarchy.
seealso:
  - name: Control Group v2, memory controller
    description: The kernel's documentation of memory.max, memory.high, memory.low and friends.
    link: https://docs.kernel.org/admin-guide/cgroup-v2.html#memory
  - name: systemd.resource-control
    description: MemoryMax=, MemoryHigh=, MemorySwapMax=, MemoryLow=, MemoryMin=.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd.resource-control.html
'''

EXAMPLES = r'''
- name: Cap a leaky application service at 2 GiB, throttling from 1.5 GiB
  oomguard.memory.memory_limit:
    unit: leaky-app.service
    max: 2G
    high: 1.5G
    swap_max: 0

- name: Give the batch slice a hard ceiling of a quarter of RAM
  oomguard.memory.memory_limit:
    unit: batch.slice
    max: 25%

- name: Protect the database's working set from reclaim
  oomguard.memory.memory_limit:
    unit: postgresql.service
    low: 4G

- name: Put a job into its own cgroup with a 512 MiB ceiling (until reboot)
  oomguard.memory.memory_limit:
    cgroup: batch/job-42
    create: true
    max: 512M
    pids: ["{{ job_pid | int }}"]

- name: Lift the limits again and drop the cgroup once it is empty
  oomguard.memory.memory_limit:
    cgroup: batch/job-42
    state: absent
'''

RETURN = r'''
cgroup_version:
  description: The cgroup version of the memory controller used (V(v1) or V(v2)); null when the
    host has no memory controller (possible for a O(unit) only).
  returned: always
  type: str
  sample: v1
layout:
  description: The host's cgroup layout (V(v1), V(v2) or V(hybrid)).
  returned: always
  type: str
  sample: hybrid
path:
  description: The cgroup directory (for a O(unit), the unit's control group as systemd reports
    it, null when it cannot be asked).
  returned: always
  type: str
  sample: /sys/fs/cgroup/memory/batch/job-42
limits:
  description:
    - Each limit before and after. Sizes are bytes (as the kernel reads them back, page-rounded,
      for a cgroup; as written, for a unit's drop-in), V(infinity) for no limit; oom_group is a
      bool. For a cgroup every limit of its cgroup version is listed; for a unit, the limits of
      our drop-in (or the runtime properties).
    - A limit that does not exist (before the cgroup is created, or after it is removed) is null.
  returned: always
  type: dict
  sample: {"max": {"before": "infinity", "after": 536870912}}
usage_bytes:
  description: Memory the cgroup used before the change, or null when unknown (no such cgroup
    yet, inactive unit, systemd not running).
  returned: always
  type: int
  sample: 104857600
dropin:
  description: Path of our drop-in for a O(unit) with O(persist=true), else null.
  returned: always
  type: str
  sample: /etc/systemd/system/leaky-app.service.d/50-oomguard-memory.conf
daemon_reload:
  description: Whether C(systemctl daemon-reload) ran (or would run, in check mode).
  returned: always
  type: bool
  sample: true
created:
  description: Whether the cgroup was (or would be) created.
  returned: always
  type: bool
  sample: false
removed:
  description: Whether the cgroup was (or would be) removed (O(state=absent)).
  returned: always
  type: bool
  sample: false
moved_pids:
  description: PIDs moved (or that would be moved) into the cgroup.
  returned: always
  type: list
  elements: int
  sample: [4242]
'''


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oomguard.memory.plugins.module_utils import procfs
from ansible_collections.oomguard.memory.plugins.module_utils.cgroup_limits import CgroupFlow
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.params import refuse_bools
from ansible_collections.oomguard.memory.plugins.module_utils.unit_limits import UnitFlow

# The real machine; unit tests point this at a fake tree.
ROOT = '/'


def argument_spec():
    return dict(
        unit=dict(type='str'),
        cgroup=dict(type='str'),
        max=dict(type='str'),
        high=dict(type='str'),
        swap_max=dict(type='str'),
        low=dict(type='str'),
        min=dict(type='str'),
        oom_group=dict(type='bool'),
        persist=dict(type='bool'),
        runtime=dict(type='bool', default=True),
        create=dict(type='bool', default=False),
        pids=dict(type='list', elements='int', default=[]),
        daemon_reload=dict(type='bool', default=True),
        force=dict(type='bool', default=False),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[('unit', 'cgroup')], required_one_of=[('unit', 'cgroup')])
    flow = (UnitFlow if module.params['unit'] is not None else CgroupFlow)(module, ROOT)
    try:
        refuse_bools(module.params, ['pids'])
        layout = procfs.detect_cgroup_layout(ROOT)
        flow.result.update(layout=layout['layout'], cgroup_version=layout['memory_version'])
        flow.run(layout)
    except OomguardError as exc:
        module.fail_json(msg=str(exc), **flow.result)
    for warning in flow.warnings:
        module.warn(warning)
    if not module._diff:
        flow.result.pop('diff', None)
    module.exit_json(**flow.result)


if __name__ == '__main__':
    main()
