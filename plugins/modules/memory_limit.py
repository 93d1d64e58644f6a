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
extends_documentation_fragment: [oomguard.memory.attributes]
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
      - v2 C(memory.high), systemd C(MemoryHigh=).
      - On cgroup v1 mapped to C(memory.soft_limit_in_bytes), which is only an approximation (v1
        reclaims down to the soft limit only when the whole host is short of memory).
    type: str
  swap_max:
    description:
      - How much swap the cgroup may use.
      - v2 C(memory.swap.max), systemd C(MemorySwapMax=).
      - On cgroup v1 written as C(memory.memsw.limit_in_bytes) = O(max) + O(swap_max), which needs
        the kernel's swap accounting; without it the module fails.
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

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oomguard.memory.plugins.module_utils import cgroups
from ansible_collections.oomguard.memory.plugins.module_utils import procfs
from ansible_collections.oomguard.memory.plugins.module_utils import systemd
from ansible_collections.oomguard.memory.plugins.module_utils.files import FileError, atomic_write, host_lock, \
    read_text, remove_file
from ansible_collections.oomguard.memory.plugins.module_utils.sizes import SizeError, parse_size
from ansible_collections.oomguard.memory.plugins.module_utils.unit_limits import UnitLimitError, \
    dropin_path, parse_dropin, property_assignments, render_dropin, systemd_properties, unit_kind, validate_unit

# The real machine; unit tests point this at a fake tree.
ROOT = '/'
# Where we remember the cgroups we created (tmpfs: forgotten at reboot, like the cgroups).
CREATED_RECORD = '/run/oomguard/memory_limit-created'

SIZE_LIMITS = ('max', 'high', 'swap_max', 'low', 'min')
V1_MISSING = {'low': 'memory.low', 'min': 'memory.min', 'oom_group': 'memory.oom.group'}


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
        force=dict(type='bool', default=False),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    )


def show(value):
    """A limit as returned and shown in diffs: bytes, 'infinity', a bool, or None (no such file)."""
    if value is None:
        return 'infinity'
    return value


class LimitRefused(Exception):
    """A user request we refuse; str() is the one sentence to show."""


class MemoryLimit(object):
    def __init__(self, module, root=None):
        self.module = module
        self.params = module.params
        self.root = root if root is not None else ROOT
        self.check = module.check_mode
        self.warnings = []
        self._total = None
        self.result = dict(changed=False, cgroup_version=None, layout=None, path=None, limits={},
                           usage_bytes=None, dropin=None, daemon_reload=False, created=False, removed=False,
                           moved_pids=[])

    # ---- input

    def total_ram(self):
        if self._total is None:
            self._total = procfs.read_meminfo(self.root)['MemTotal'] * 1024
        return self._total

    def wanted_limits(self):
        """The limits asked for, parsed: {name: bytes|None|bool}; percent texts kept aside."""
        wanted, literal = {}, {}
        for name in SIZE_LIMITS:
            raw = self.params[name]
            if raw is None:
                continue
            total = self.total_ram() if '%' in raw else None
            wanted[name] = parse_size(raw, name=name, allow_percent=True, total=total, allow_infinity=True)
            literal[name] = raw.strip()
        if self.params['oom_group'] is not None:
            wanted['oom_group'] = self.params['oom_group']
        return wanted, literal

    def check_protection(self, wanted, current_max):
        """low/min must not exceed the hard limit (the requested one, else the current one)."""
        limit = wanted['max'] if 'max' in wanted else current_max
        if limit is None:
            return
        for name in ('low', 'min'):
            if name in wanted and (wanted[name] is None or wanted[name] > limit):
                raise LimitRefused('refusing %s=%s: it is above the hard limit max=%d, so the protection could never '
                                   'be reached; lower %s or raise max' % (name, self.params[name], limit, name))

    def check_usage(self, wanted, current, usage, where):
        if usage is None or self.params['force']:
            return
        for name in ('max', 'high'):
            if name not in wanted or wanted[name] is None:
                continue
            if cgroups.kernel_rounded(wanted[name]) == cgroups.kernel_rounded(current.get(name, 0)):
                continue
            if cgroups.kernel_rounded(wanted[name]) < usage:
                raise LimitRefused('refusing to set %s=%s on %s: current usage is %d bytes, above the requested %d; '
                                   'the kernel would reclaim or OOM-kill at once; use force: true to apply anyway'
                                   % (name, self.params[name], where, usage, wanted[name]))

    # ---- raw cgroups

    def run_cgroup(self, layout):
        params = self.params
        version = layout['memory_version']
        if version is None:
            raise LimitRefused('this host has no cgroup hierarchy with the memory controller, so cgroup %r cannot be '
                               'limited' % params['cgroup'])
        if params['runtime'] is False:
            raise LimitRefused('runtime: false with cgroup does nothing: a raw cgroup has only its runtime state; use '
                               'unit: for a limit that applies later')
        if params['persist']:
            self.warnings.append('persist: true cannot be honoured for a raw cgroup: cgroupfs is rebuilt at every '
                                 'boot, so cgroup %r and its limits are gone after a reboot; use unit: for a lasting '
                                 'limit' % params['cgroup'])
        rel = cgroups.normalize_cgroup_path(params['cgroup'])
        directory = cgroups.cgroup_dir(layout['memory_root'], rel)
        self.result['path'] = directory
        exists = cgroups.exists(directory)
        if params['state'] == 'absent':
            return self.cgroup_absent(version, rel, directory, exists)

        wanted, _literal = self.wanted_limits()
        if version == 'v1':
            bad = [n for n in ('low', 'min', 'oom_group') if n in wanted]
            if bad:
                raise LimitRefused('%s cannot be set on cgroup %r: the memory controller here is on cgroup v1, which '
                                   'has no %s; use a systemd unit on a cgroup v2 host or drop the option'
                                   % (', '.join(bad), rel, ' or '.join(V1_MISSING[n] for n in bad)))
        if not exists and not params['create']:
            raise LimitRefused('cgroup %r does not exist (%s); use create: true to create it' % (rel, directory))
        enable = cgroups.v2_missing_subtree_control(layout['memory_root'], rel) if version == 'v2' else []
        if version == 'v2' and enable and exists and not params['create']:
            raise LimitRefused('cgroup %r has no memory controller: %s lacks memory in cgroup.subtree_control; use '
                               'create: true to enable it' % (rel, enable[0]))
        for parent in enable:
            if parent != layout['memory_root'] and cgroups.exists(parent) and cgroups.read_procs(parent):
                raise LimitRefused('cannot enable the memory controller below %s for cgroup %r: it holds processes, '
                                   'and cgroup v2 allows controllers only below cgroups without processes; move them '
                                   'to a child first' % (parent, rel))
        if exists and not enable:
            current = cgroups.read_limits(directory, version)
            usage = cgroups.read_usage(directory, version)
        else:
            # Missing, or its memory files appear only once the parents enable the controller.
            current = self.new_cgroup_limits(version, layout['memory_root'])
            usage = None
        self.result['usage_bytes'] = usage
        self.check_protection(wanted, current.get('max'))
        self.check_usage(wanted, current, usage, directory)
        writes = self.plan_writes(version, current, wanted)
        moves = self.plan_moves(directory, exists)
        after = cgroups.expected_after(current, wanted, version)
        changed = bool(writes or moves or not exists or enable)

        if changed and not self.check:
            with host_lock('cgroup-' + rel):
                created = []
                try:
                    if not exists:
                        self.create_cgroup(version, layout['memory_root'], rel, enable, created)
                        current = cgroups.read_limits(directory, version)
                        writes = self.plan_writes(version, current, wanted)
                    elif enable:
                        for parent in enable:
                            cgroups.v2_enable_memory(parent)
                        current = cgroups.read_limits(directory, version)
                        writes = self.plan_writes(version, current, wanted)
                    cgroups.apply_writes(directory, writes)
                except (cgroups.CgroupError, LimitRefused):
                    # The kernel refused what planning could not foresee: take back the cgroups made
                    # in this run (still empty: processes move only after the limits are set).
                    self.undo_create(created)
                    raise
                for pid in moves:
                    self.move_pid(directory, pid)
            after = cgroups.read_limits(directory, version)

        if changed:
            self.warnings.append('cgroup %r is a raw cgroup: its limits last until it is removed or the host reboots; '
                                 'use unit: for limits that persist' % rel)
        self.result.update(changed=changed, created=not exists, moved_pids=moves)
        names = sorted(set(current) | set(after), key=cgroups.LIMIT_NAMES.index)
        self.result['limits'] = dict((n, {'before': None if not exists else show(current.get(n)),
                                          'after': show(after.get(n))}) for n in names)
        self.set_cgroup_diff(directory, version, current if exists else None, after, moves)

    def new_cgroup_limits(self, version, memory_root):
        """The limits a cgroup has right after mkdir (the kernel defaults)."""
        names = list(cgroups.limit_files(version))
        if version == 'v1' and not os.path.exists(os.path.join(memory_root, cgroups.V1_FILES['swap_max'])):
            names.remove('swap_max')
        return dict((n, cgroups.DEFAULTS[n]) for n in names)

    def plan_writes(self, version, current, wanted):
        if version == 'v1':
            return cgroups.v1_writes(current, wanted)
        return cgroups.v2_writes(current, wanted)

    def plan_moves(self, directory, exists):
        pids = self.params['pids']
        inside = set(cgroups.read_procs(directory)) if exists else set()
        moves = []
        for pid in pids:
            if pid <= 0 or not os.path.isdir(procfs.path_in(self.root, '/proc/%d' % pid)):
                raise LimitRefused('cannot move PID %d into cgroup %r: no such process' % (pid, self.params['cgroup']))
            if pid not in inside and pid not in moves:
                moves.append(pid)
        return moves

    def move_pid(self, directory, pid):
        try:
            cgroups.write_file(os.path.join(directory, 'cgroup.procs'), '%d' % pid)
        except cgroups.CgroupError as exc:
            raise LimitRefused('cannot move PID %d into %s: %s' % (pid, directory, exc))

    def create_cgroup(self, version, memory_root, rel, enable, created):
        """mkdir the missing parts of ``rel`` (appending each to ``created``, so a failure half-way
        can be undone) and remember them as ours."""
        current = memory_root
        for part in rel.split('/'):
            if version == 'v2' and current in enable:
                cgroups.v2_enable_memory(current)
            current = os.path.join(current, part)
            if not cgroups.exists(current):
                cgroups.make_dir(current)
                created.append(current)
                if version == 'v2' and current != os.path.join(memory_root, *rel.split('/')):
                    # A parent we just made: the child needs memory in its subtree_control too.
                    enable.append(current)
        self.remember_created(created)

    def undo_create(self, created):
        for path in reversed(created):
            try:
                cgroups.remove_dir(path)
            except cgroups.CgroupError:
                return
            self.forget_created(path)

    def record_path(self):
        return procfs.path_in(self.root, CREATED_RECORD)

    def created_by_us(self):
        text = read_text(self.record_path())
        return [line for line in (text or '').splitlines() if line]

    def remember_created(self, paths):
        if not paths:
            return
        record = self.record_path()
        if not os.path.isdir(os.path.dirname(record)):
            os.makedirs(os.path.dirname(record), 0o755)
        with host_lock('memory-limit-record'):
            known = self.created_by_us()
            atomic_write(record, ''.join('%s\n' % p for p in known + [p for p in paths if p not in known]))

    def forget_created(self, path):
        with host_lock('memory-limit-record'):
            known = self.created_by_us()
            if path not in known:
                return
            rest = [p for p in known if p != path]
            if rest:
                atomic_write(self.record_path(), ''.join('%s\n' % p for p in rest))
                return
            # Nothing of ours left: leave no trace in /run.
            remove_file(self.record_path())
            try:
                os.rmdir(os.path.dirname(self.record_path()))
            except OSError:
                pass

    def cgroup_absent(self, version, rel, directory, exists):
        given = [n for n in SIZE_LIMITS + ('oom_group',) if self.params[n] is not None]
        if given or self.params['pids'] or self.params['create']:
            raise LimitRefused('state: absent lifts every limit of cgroup %r and takes no values; remove %s from the '
                               'task' % (rel, ', '.join(given + [n for n in ('pids', 'create') if self.params[n]])))
        if not exists:
            self.result['limits'] = {}
            return
        current = cgroups.read_limits(directory, version)
        self.result['usage_bytes'] = cgroups.read_usage(directory, version)
        removable = (directory in self.created_by_us() and not cgroups.read_procs(directory)
                     and not cgroups.child_cgroups(directory))
        defaults = dict((n, cgroups.DEFAULTS[n]) for n in current)
        writes = [] if removable else self.plan_writes(version, current, defaults)
        after = {} if removable else cgroups.expected_after(current, defaults, version)
        changed = bool(removable or writes)
        if changed and not self.check:
            with host_lock('cgroup-' + rel):
                if removable:
                    cgroups.remove_dir(directory)
                    self.forget_created(directory)
                else:
                    cgroups.apply_writes(directory, writes)
                    after = cgroups.read_limits(directory, version)
        self.result.update(changed=changed, removed=removable)
        self.result['limits'] = dict((n, {'before': show(current[n]), 'after': show(after[n]) if n in after else None})
                                     for n in sorted(current, key=cgroups.LIMIT_NAMES.index))
        self.set_cgroup_diff(directory, version, current, after if not removable else None, [])

    def set_cgroup_diff(self, directory, version, before, after, moves):
        files = cgroups.limit_files(version)

        def render(values):
            if values is None:
                return ''
            lines = []
            for name in cgroups.LIMIT_NAMES:
                if name in values:
                    lines.append('%s (%s) = %s\n' % (name, files[name], show(values[name])))
            return ''.join(lines)
        after_text = render(after)
        if moves:
            after_text += ''.join('cgroup.procs += %d\n' % pid for pid in moves)
        self.result['diff'] = dict(before=render(before), after=after_text,
                                   before_header=directory, after_header=directory)

    # ---- systemd units

    def run_unit(self, layout):
        params = self.params
        unit = validate_unit(params['unit'])
        for name in ('create', 'pids'):
            if params[name]:
                raise LimitRefused('%s applies to raw cgroups only; systemd creates and fills the cgroup of unit %s'
                                   % (name, unit))
        persist = True if params['persist'] is None else params['persist']
        if not persist and not params['runtime']:
            raise LimitRefused('persist: false and runtime: false together would change nothing for unit %s' % unit)
        version = layout['memory_version']
        props = systemd_properties(self.module, unit, self.root)
        self.result['usage_bytes'] = props.get('usage')
        self.result['path'] = props.get('path')
        if params['state'] == 'absent':
            given = [n for n in SIZE_LIMITS + ('oom_group',) if params[n] is not None]
            if given:
                raise LimitRefused('state: absent removes every limit this module set on unit %s and takes no values; '
                                   'remove %s from the task' % (unit, ', '.join(given)))
            wanted, literal = {}, {}
        else:
            wanted, literal = self.wanted_limits()
            if 'oom_group' in wanted and unit_kind(unit) not in ('service', 'scope'):
                raise LimitRefused('oom_group cannot be set on %s: only services and scopes have an OOM policy' % unit)
            self.check_protection(wanted, props.get('max'))
            self.check_usage(wanted, props.get('current', {}), props.get('usage'), unit)
            if version == 'v1':
                ignored = [n for n in ('high', 'swap_max', 'low', 'min') if n in wanted]
                if ignored:
                    self.warnings.append('systemd applies %s only on the unified (v2) cgroup hierarchy; this host runs '
                                         'the memory controller on v1, so only max takes effect here (the drop-in keeps '
                                         'the values for a v2 boot)' % ', '.join(ignored))
        if persist:
            self.unit_dropin(unit, version, wanted, literal, props)
        else:
            self.unit_runtime(unit, version, wanted, literal, props)

    def unit_dropin(self, unit, version, wanted, literal, props):
        path = dropin_path(unit, self.root)
        self.result['dropin'] = path
        before_text = read_text(path)
        before = parse_dropin(before_text) if before_text is not None else {}
        if self.params['state'] == 'absent':
            outcome = systemd.remove_dropin(path, check_mode=self.check)
            after_text = ''
        else:
            after_text = render_dropin(unit, wanted, literal, legacy_limit=self.legacy_limit(version, props))
            outcome = systemd.write_dropin(path, after_text, check_mode=self.check)
        after = parse_dropin(after_text) if after_text else {}
        changed = outcome['changed']
        if changed and self.params['runtime'] and props['booted']:
            self.result['daemon_reload'] = True
            if not self.check:
                systemd.daemon_reload(self.module)
        elif changed and self.params['runtime']:
            self.warnings.append('systemd is not running on this host, so no daemon-reload ran; the drop-in for %s '
                                 'takes effect when systemd starts' % unit)
        elif changed:
            self.warnings.append('the drop-in for %s changed but runtime: false skipped daemon-reload; the limits take '
                                 'effect at the next daemon-reload or reboot' % unit)
        self.result['changed'] = changed
        self.result['limits'] = dict((n, {'before': before.get(n), 'after': after.get(n)})
                                     for n in sorted(set(before) | set(after), key=cgroups.LIMIT_NAMES.index))
        limits = self.result['limits']

        def render(side):
            return ''.join('%s = %s\n' % (n, limits[n][side]) for n in limits if limits[n][side] is not None)
        self.result['diff'] = [
            dict(before=before_text or '', after=after_text, before_header=path, after_header=path),
            dict(before=render('before'), after=render('after'), before_header='%s limits' % unit,
                 after_header='%s limits' % unit),
        ]

    def legacy_limit(self, version, props):
        # systemd < 240 on the v1 hierarchy knows only MemoryLimit=.
        return version == 'v1' and props.get('systemd_version') is not None and props['systemd_version'] < 240

    def unit_runtime(self, unit, version, wanted, literal, props):
        if 'oom_group' in wanted:
            raise LimitRefused('oom_group on unit %s needs persist: true: OOMPolicy= cannot be set at runtime' % unit)
        current = props.get('current', {})
        if self.params['state'] == 'absent':
            wanted, literal = dict((n, cgroups.DEFAULTS[n]) for n in SIZE_LIMITS), {}
        assignments = []
        for name, text in property_assignments(wanted, literal, legacy_limit=self.legacy_limit(version, props)):
            if name in current and cgroups.kernel_rounded(current[name]) == cgroups.kernel_rounded(wanted[name]):
                continue
            assignments.append(text)
        changed = bool(assignments)
        if changed and not props['booted']:
            raise LimitRefused('persist: false sets the limits of unit %s through the running systemd, which this host '
                               'does not run; use persist: true to write a drop-in' % unit)
        if changed and not self.check:
            self.systemctl(['set-property', '--runtime', '--', unit] + assignments)
        self.result['changed'] = changed
        self.result['limits'] = dict((n, {'before': show(current[n]) if n in current else None,
                                          'after': show(wanted[n])}) for n in wanted)
        before = ''.join('%s=%s\n' % (n, show(current[n]) if n in current else '(unknown)') for n in sorted(wanted))
        after = ''.join('%s=%s\n' % (n, show(wanted[n])) for n in sorted(wanted))
        self.result['diff'] = dict(before=before, after=after, before_header='%s (runtime)' % unit,
                                   after_header='%s (runtime)' % unit)

    def systemctl(self, args):
        rc, out, err = self.module.run_command(['systemctl'] + args, environ_update={'LC_ALL': 'C'})
        if rc != 0:
            raise LimitRefused('systemctl %s failed (rc=%d): %s' % (' '.join(args), rc, (err or out).strip()))
        return out

    # ---- main

    def run(self):
        layout = procfs.detect_cgroup_layout(self.root)
        self.result['layout'] = layout['layout']
        self.result['cgroup_version'] = layout['memory_version']
        if self.params['unit'] is not None:
            self.run_unit(layout)
        else:
            self.run_cgroup(layout)
        return self.result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[('unit', 'cgroup')], required_one_of=[('unit', 'cgroup')])
    limit = MemoryLimit(module)
    try:
        result = limit.run()
    except (LimitRefused, SizeError, cgroups.CgroupError, UnitLimitError, systemd.SystemdError, FileError,
            procfs.ProcError) as exc:
        module.fail_json(msg=str(exc), **limit.result)
    for warning in limit.warnings:
        module.warn(warning)
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
