# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The memory limits a memory_limit task asks for, and the checks both of its flows share.

Private to the oomguard.memory collection: no compatibility promise to other code.

Map: ``Flow`` is the base of the raw cgroup flow (cgroup_limits.CgroupFlow) and the systemd
unit flow (unit_limits.UnitFlow): the options, the root, check mode, warnings and the result
being built. ``wanted_limits`` parses the size options; ``check_order`` (high, low and min
against max) and ``check_usage`` (a ceiling below what the cgroup uses now) refuse, before
anything changes, what the kernel would accept but the user cannot mean.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.oomguard.memory.plugins.module_utils import cgroups
from ansible_collections.oomguard.memory.plugins.module_utils import procfs
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.sizes import human_size, parse_size

SIZE_LIMITS = ('max', 'high', 'swap_max', 'low', 'min')


class LimitRefused(OomguardError):
    """A user request we refuse; str() is the one sentence to show."""


def show(value):
    """A limit as returned and shown in diffs: bytes, 'infinity', a bool, or None (no such file)."""
    if value is None:
        return 'infinity'
    return value


def given(params):
    """The limit options (sizes and oom_group) the task sets."""
    return [n for n in SIZE_LIMITS + ('oom_group',) if params[n] is not None]


class Flow(object):
    """What both flows share: options, root, check mode, warnings and the result."""

    def __init__(self, module, root):
        self.module = module
        self.params = module.params
        self.root = root
        self.check = module.check_mode
        self.warnings = []
        self._total = None
        self.result = dict(changed=False, cgroup_version=None, layout=None, path=None, limits={},
                           usage_bytes=None, dropin=None, daemon_reload=False, created=False, removed=False,
                           moved_pids=[])

    def total_ram(self):
        if self._total is None:
            self._total = procfs.read_meminfo(self.root)['MemTotal'] * 1024
        return self._total

    def wanted_limits(self):
        """The limits asked for, parsed: ({name: bytes|None|bool}, {name: text as written})."""
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

    def check_order(self, wanted, current_max):
        """high, low and min must not exceed the hard limit (the requested one, else the current one):
        above it they could never be reached."""
        limit = wanted['max'] if 'max' in wanted else current_max
        if limit is None:
            return
        for name in ('high', 'low', 'min'):
            if name not in wanted:
                continue
            value = wanted[name]
            if name == 'high' and value is None:
                continue   # high=infinity is "no throttling", the default, whatever max is
            if value is None or value > limit:
                raise LimitRefused('%s: refusing %s=%s: it is above the hard limit max=%s, so it could never be '
                                   'reached; lower %s or raise max'
                                   % (name, name, self.params[name], human_size(limit), name))

    def check_usage(self, wanted, current, usage, where):
        if usage is None or self.params['force']:
            return
        for name in ('max', 'high'):
            if name not in wanted or wanted[name] is None:
                continue
            if cgroups.kernel_rounded(wanted[name]) == cgroups.kernel_rounded(current.get(name, 0)):
                continue
            if cgroups.kernel_rounded(wanted[name]) < usage:
                raise LimitRefused('refusing to set %s=%s on %s: current usage is %s, above the requested %s; '
                                   'the kernel would reclaim or OOM-kill at once; use force: true to apply anyway'
                                   % (name, self.params[name], where, human_size(usage), human_size(wanted[name])))
