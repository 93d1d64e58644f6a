# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""memory_limit on a raw cgroup: plan, create, write the limits, move processes, or lift them.

Private to the oomguard.memory collection: no compatibility promise to other code.

Map: ``CgroupFlow.run(layout)`` checks the request against the host (v1 has no low/min/oom_group;
a v1 swap limit needs a max to add it to; pids must be user processes), plans the writes with
cgroups.v1_writes/v2_writes, and applies them under a host lock. A cgroup it creates is
recorded under /run (``Record``) so state=absent removes only cgroups of ours; when the kernel
refuses a write or a move after the cgroup was made, the processes go back where they were and
the new cgroup and its record are taken back.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.oomguard.memory.plugins.module_utils import cgroups
from ansible_collections.oomguard.memory.plugins.module_utils import procfs
from ansible_collections.oomguard.memory.plugins.module_utils.files import (
    atomic_write, host_lock, read_text, remove_file)
from ansible_collections.oomguard.memory.plugins.module_utils.limits import Flow, LimitRefused, given, show
from ansible_collections.oomguard.memory.plugins.module_utils.processes import PID_MAX_LIMIT

# Where we remember the cgroups we created (tmpfs: forgotten at reboot, like the cgroups).
CREATED_RECORD = '/run/oomguard/memory_limit-created'
V1_MISSING = {'low': 'memory.low', 'min': 'memory.min', 'oom_group': 'memory.oom.group'}


class Record(object):
    """The cgroups this module created, one directory a line, in a file under /run."""

    def __init__(self, root):
        self.path = procfs.path_in(root, CREATED_RECORD)

    def paths(self):
        return [line for line in (read_text(self.path) or '').splitlines() if line]

    def add(self, paths):
        if not paths:
            return
        if not os.path.isdir(os.path.dirname(self.path)):
            os.makedirs(os.path.dirname(self.path), 0o755)
        with host_lock('memory-limit-record'):
            known = self.paths()
            atomic_write(self.path, ''.join('%s\n' % p for p in known + [p for p in paths if p not in known]))

    def forget(self, path):
        with host_lock('memory-limit-record'):
            known = self.paths()
            if path not in known:
                return
            rest = [p for p in known if p != path]
            if rest:
                atomic_write(self.path, ''.join('%s\n' % p for p in rest))
                return
            # Nothing of ours left: leave no trace in /run.
            remove_file(self.path)
            try:
                os.rmdir(os.path.dirname(self.path))
            except OSError:
                pass


def plan_writes(version, current, wanted):
    if version == 'v1':
        return cgroups.v1_writes(current, wanted)
    return cgroups.v2_writes(current, wanted)


def new_cgroup_limits(version, memory_root):
    """The limits a cgroup has right after mkdir (the kernel defaults)."""
    names = list(cgroups.limit_files(version))
    if version == 'v1' and not os.path.exists(os.path.join(memory_root, cgroups.V1_FILES['swap_max'])):
        names.remove('swap_max')
    return dict((n, cgroups.DEFAULTS[n]) for n in names)


def render_diff(directory, version, before, after, moves):
    files = cgroups.limit_files(version)

    def render(values):
        if values is None:
            return ''
        return ''.join('%s (%s) = %s\n' % (name, files[name], show(values[name]))
                       for name in cgroups.LIMIT_NAMES if name in values)
    after_text = render(after) + ''.join('cgroup.procs += %d\n' % pid for pid in moves)
    return dict(before=render(before), after=after_text, before_header=directory, after_header=directory)


class CgroupFlow(Flow):
    """The raw cgroup flow of memory_limit (see the file's docstring)."""

    def __init__(self, module, root):
        super(CgroupFlow, self).__init__(module, root)
        self.record = Record(root)
        self.rel = None
        self.directory = None

    def run(self, layout):
        params = self.params
        version = layout['memory_version']
        # The options first, the host second: a bad value is named even on a host without cgroups.
        wanted = self.wanted_limits()[0] if params['state'] == 'present' else {}
        self.check_pids()
        self.check_request(version)
        self.rel = cgroups.normalize_cgroup_path(params['cgroup'])
        self.directory = directory = cgroups.cgroup_dir(layout['memory_root'], self.rel)
        self.result['path'] = directory
        exists = cgroups.exists(directory)
        if params['state'] == 'absent':
            return self.absent(version, exists)
        self.check_version(version, wanted)
        enable = self.check_controller(version, layout['memory_root'], exists)
        if exists and not enable:
            current = cgroups.read_limits(directory, version)
            usage = cgroups.read_usage(directory, version)
        else:
            # Missing, or its memory files appear only once the parents enable the controller.
            current = new_cgroup_limits(version, layout['memory_root'])
            usage = None
        self.result['usage_bytes'] = usage
        self.check_order(wanted, current.get('max'))
        self.check_swap_max(version, wanted, current)
        self.check_usage(wanted, current, usage, directory)
        writes = plan_writes(version, current, wanted)
        moves = self.plan_moves(exists)
        after = cgroups.expected_after(current, wanted, version)
        changed = bool(writes or moves or not exists or enable)
        if changed and not self.check:
            after = self.apply(version, layout['memory_root'], exists, enable, wanted, writes, moves)
        if changed:
            self.warnings.append('cgroup %r is a raw cgroup: its limits last until it is removed or the host reboots; '
                                 'use unit: for limits that persist' % self.rel)
        self.result.update(changed=changed, created=not exists, moved_pids=moves)
        names = sorted(set(current) | set(after), key=cgroups.LIMIT_NAMES.index)
        self.result['limits'] = dict((n, {'before': None if not exists else show(current.get(n)),
                                          'after': show(after.get(n))}) for n in names)
        self.result['diff'] = render_diff(directory, version, current if exists else None, after, moves)

    def check_request(self, version):
        params = self.params
        if version is None:
            raise LimitRefused('cgroup: this host has no cgroup hierarchy with the memory controller, so cgroup %r '
                               'cannot be limited' % params['cgroup'])
        if params['runtime'] is False:
            raise LimitRefused('runtime: false with cgroup does nothing: a raw cgroup has only its runtime state; use '
                               'unit: for a limit that applies later')
        if params['persist']:
            self.warnings.append('persist: true cannot be honoured for a raw cgroup: cgroupfs is rebuilt at every '
                                 'boot, so cgroup %r and its limits are gone after a reboot; use unit: for a lasting '
                                 'limit' % params['cgroup'])

    def check_pids(self):
        bad = [pid for pid in self.params['pids'] if not 1 <= pid <= PID_MAX_LIMIT]
        if bad:
            raise LimitRefused('pids: %d is not a process id (they go from 1 to %d)' % (bad[0], PID_MAX_LIMIT))

    def check_version(self, version, wanted):
        if version != 'v1':
            return
        bad = [n for n in ('low', 'min', 'oom_group') if n in wanted]
        if bad:
            raise LimitRefused('%s cannot be set on cgroup %r: the memory controller here is on cgroup v1, which '
                               'has no %s; use a systemd unit on a cgroup v2 host or drop the option'
                               % (', '.join(bad), self.rel, ' or '.join(V1_MISSING[n] for n in bad)))

    def check_swap_max(self, version, wanted, current):
        """On v1 the swap limit is memsw = max + swap_max: without a max there is nothing to add it to."""
        if version != 'v1' or 'swap_max' not in wanted or wanted['swap_max'] is None:
            return
        limit = wanted['max'] if 'max' in wanted else current.get('max')
        if limit is None:
            raise LimitRefused('swap_max: cannot limit the swap of cgroup %r on cgroup v1 without a memory limit: v1 '
                               'limits memory and swap together (memory.memsw.limit_in_bytes = max + swap_max) and '
                               'the cgroup has no max; give max as well' % self.rel)

    def check_controller(self, version, memory_root, exists):
        """The parents whose subtree_control must gain +memory (v2), after refusing what cannot work."""
        if not exists and not self.params['create']:
            raise LimitRefused('cgroup %r does not exist (%s); use create: true to create it'
                               % (self.rel, self.directory))
        enable = cgroups.v2_missing_subtree_control(memory_root, self.rel) if version == 'v2' else []
        if enable and exists and not self.params['create']:
            raise LimitRefused('cgroup %r has no memory controller: %s lacks memory in cgroup.subtree_control; use '
                               'create: true to enable it' % (self.rel, enable[0]))
        for parent in enable:
            if parent != memory_root and cgroups.exists(parent) and cgroups.read_procs(parent):
                raise LimitRefused('cannot enable the memory controller below %s for cgroup %r: it holds processes, '
                                   'and cgroup v2 allows controllers only below cgroups without processes; move them '
                                   'to a child first' % (parent, self.rel))
        return enable

    def plan_moves(self, exists):
        inside = set(cgroups.read_procs(self.directory)) if exists else set()
        moves = []
        for pid in self.params['pids']:
            if not os.path.isdir(procfs.path_in(self.root, '/proc/%d' % pid)):
                raise LimitRefused('pids: cannot move PID %d into cgroup %r: no such process'
                                   % (pid, self.params['cgroup']))
            try:
                stat = procfs.read_pid_stat(pid, self.root)
            except (procfs.ProcError, IndexError, ValueError):
                stat = None   # gone or unreadable: the kernel decides, and a refusal is rolled back
            if stat is not None and procfs.is_kernel_thread(stat):
                raise LimitRefused('pids: cannot move PID %d (%s) into cgroup %r: it is a kernel thread, which the '
                                   'kernel keeps in the root cgroup' % (pid, stat['comm'], self.params['cgroup']))
            if pid not in inside and pid not in moves:
                moves.append(pid)
        return moves

    def apply(self, version, memory_root, exists, enable, wanted, writes, moves):
        """Create, write, move; take back what this run made when the kernel refuses. The limits after."""
        directory = self.directory
        with host_lock('cgroup-' + self.rel):
            created = []
            try:
                if not exists:
                    self.create(version, memory_root, enable, created)
                elif enable:
                    for parent in enable:
                        cgroups.v2_enable_memory(parent)
                if not exists or enable:
                    writes = plan_writes(version, cgroups.read_limits(directory, version), wanted)
                cgroups.apply_writes(directory, writes)
                self.move(moves, memory_root)
            except (cgroups.CgroupError, LimitRefused):
                # The kernel refused what planning could not foresee: take back the cgroups made
                # in this run (empty again once the moved processes went back).
                self.undo_create(created)
                raise
        return cgroups.read_limits(directory, version)

    def move(self, moves, memory_root):
        """Move ``moves`` into the cgroup; on a refusal put the ones already moved back."""
        done = []
        for pid in moves:
            origin = self.origin(pid, memory_root)
            try:
                cgroups.write_file(os.path.join(self.directory, 'cgroup.procs'), '%d' % pid)
            except cgroups.CgroupError as exc:
                for moved, back in reversed(done):
                    try:
                        cgroups.write_file(os.path.join(back, 'cgroup.procs'), '%d' % moved)
                    except cgroups.CgroupError:
                        pass
                raise LimitRefused('pids: cannot move PID %d into %s: %s' % (pid, self.directory, exc))
            done.append((pid, origin))

    def origin(self, pid, memory_root):
        """The memory cgroup directory ``pid`` is in now (the root when unknown)."""
        try:
            path = procfs.memory_cgroup_of(procfs.read_pid_cgroup(pid, self.root))
        except procfs.ProcError:
            path = None
        if not path or path == '/':
            return memory_root
        return os.path.join(memory_root, *path.strip('/').split('/'))

    def create(self, version, memory_root, enable, created):
        """mkdir the missing parts of the cgroup (appending each to ``created``, so a failure half-way
        can be undone) and record them as ours."""
        current = memory_root
        leaf = os.path.join(memory_root, *self.rel.split('/'))
        for part in self.rel.split('/'):
            if version == 'v2' and current in enable:
                cgroups.v2_enable_memory(current)
            current = os.path.join(current, part)
            if not cgroups.exists(current):
                cgroups.make_dir(current)
                created.append(current)
                if version == 'v2' and current != leaf:
                    # A parent we just made: the child needs memory in its subtree_control too.
                    enable.append(current)
        self.record.add(created)

    def undo_create(self, created):
        for path in reversed(created):
            try:
                cgroups.remove_dir(path)
            except cgroups.CgroupError:
                return
            self.record.forget(path)

    def absent(self, version, exists):
        rel, directory = self.rel, self.directory
        extra = given(self.params) + [n for n in ('pids', 'create') if self.params[n]]
        if extra:
            raise LimitRefused('state: absent lifts every limit of cgroup %r and takes no values; remove %s from the '
                               'task' % (rel, ', '.join(extra)))
        if not exists:
            self.result['limits'] = {}
            return
        current = cgroups.read_limits(directory, version)
        self.result['usage_bytes'] = cgroups.read_usage(directory, version)
        removable = (directory in self.record.paths() and not cgroups.read_procs(directory)
                     and not cgroups.child_cgroups(directory))
        defaults = dict((n, cgroups.DEFAULTS[n]) for n in current)
        writes = [] if removable else plan_writes(version, current, defaults)
        after = {} if removable else cgroups.expected_after(current, defaults, version)
        changed = bool(removable or writes)
        if changed and not self.check:
            with host_lock('cgroup-' + rel):
                if removable:
                    cgroups.remove_dir(directory)
                    self.record.forget(directory)
                else:
                    cgroups.apply_writes(directory, writes)
                    after = cgroups.read_limits(directory, version)
        self.result.update(changed=changed, removed=removable)
        self.result['limits'] = dict((n, {'before': show(current[n]), 'after': show(after[n]) if n in after else None})
                                     for n in sorted(current, key=cgroups.LIMIT_NAMES.index))
        self.result['diff'] = render_diff(directory, version, current, after if not removable else None, [])
