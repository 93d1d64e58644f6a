# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Memory limits of systemd units: the drop-in memory_limit writes, and what systemctl reports.

Private to the oomguard.memory collection: no compatibility promise to other code.

Limit names are the module's (max, high, swap_max, low, min, oom_group); PROPERTIES maps them to
systemd's resource-control keys. Rendering and parsing are pure (text in, data out);
systemd_properties() asks systemd. ``UnitFlow`` is memory_limit's flow for a unit: a drop-in of
ours plus daemon-reload (which the caller may leave to a handler), or runtime properties.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from ansible_collections.oomguard.memory.plugins.module_utils import cgroups
from ansible_collections.oomguard.memory.plugins.module_utils import systemd
from ansible_collections.oomguard.memory.plugins.module_utils.files import read_text
from ansible_collections.oomguard.memory.plugins.module_utils.limits import Flow, LimitRefused, SIZE_LIMITS, given, show
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.sizes import SizeError, parse_size

PROPERTIES = (
    ('max', 'MemoryMax'),
    ('high', 'MemoryHigh'),
    ('swap_max', 'MemorySwapMax'),
    ('low', 'MemoryLow'),
    ('min', 'MemoryMin'),
)
KINDS = {'service': 'Service', 'slice': 'Slice', 'scope': 'Scope'}
DROPIN_NAME = '50-oomguard-memory'
COMMENT = 'Managed by oomguard.memory.memory_limit: memory limits of %s.\nLocal changes are overwritten.'


class UnitLimitError(OomguardError):
    """A unit or drop-in we cannot work with; str() is the sentence to show."""


def unit_kind(unit):
    return unit.rsplit('.', 1)[-1]


def validate_unit(unit):
    """The unit name (a service, slice or scope; '.service' added when there is no suffix)."""
    return systemd.validate_unit(unit, types=KINDS)


def dropin_path(unit, root='/'):
    return systemd.dropin_path(unit, DROPIN_NAME, root)


def property_text(value, literal=None):
    """How a limit is written for systemd: the user's percentage as given, 'infinity', or bytes
    with the largest 1024-based unit that divides them exactly (2G, 1536M, 4097)."""
    if literal is not None and literal.endswith('%'):
        return literal.replace(' ', '')
    if value is None:
        return 'infinity'
    for suffix, power in (('T', 4), ('G', 3), ('M', 2), ('K', 1)):
        if value and value % (1024 ** power) == 0:
            return '%d%s' % (value // 1024 ** power, suffix)
    return '%d' % value


def property_assignments(wanted, literal=None, legacy_limit=False):
    """[(name, 'Key=value')] for the size limits in ``wanted`` (oom_group is not a property)."""
    literal = literal or {}
    out = []
    for name, key in PROPERTIES:
        if name in wanted:
            if name == 'max' and legacy_limit:
                key = 'MemoryLimit'
            out.append((name, '%s=%s' % (key, property_text(wanted[name], literal.get(name)))))
    return out


def render_dropin(unit, wanted, literal=None, legacy_limit=False):
    """The whole drop-in for ``wanted`` limits of ``unit``."""
    settings = [tuple(text.split('=', 1)) for _name, text in property_assignments(wanted, literal, legacy_limit)]
    if wanted.get('oom_group'):
        settings.append(('OOMPolicy', 'kill'))
    return systemd.render_dropin(KINDS[unit_kind(unit)], settings, comment=COMMENT % unit)


def parse_dropin(text):
    """Limits in a drop-in of ours: {name: text as written} (oom_group: bool)."""
    keys = dict((key, name) for name, key in PROPERTIES)
    keys['MemoryLimit'] = 'max'
    result = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(('#', ';', '[')) or '=' not in line:
            continue
        key, value = [part.strip() for part in line.split('=', 1)]
        if key in keys:
            result[keys[key]] = value
        elif key == 'OOMPolicy':
            result['oom_group'] = value == 'kill'
    return result


def show_value(text):
    """A systemctl show size: bytes, None for infinity, or KeyError-style absence for '[not set]'."""
    if text in ('infinity', ''):
        return None
    try:
        return parse_size(text)
    except SizeError:
        raise UnitLimitError('systemctl reported %r where it should report a size' % text)


def parse_version(text):
    match = re.match(r'systemd (\d+)', text or '')
    return int(match.group(1)) if match else None


def systemd_properties(module, unit, root='/'):
    """What systemd knows about the unit now: {usage, path, current: {name: bytes|None|bool}, max,
    systemd_version, booted}. Empty values when systemd is not running (the drop-in can still be
    written; it takes effect when systemd starts)."""
    result = {'usage': None, 'path': None, 'current': {}, 'max': None, 'systemd_version': None,
              'booted': systemd.booted(root)}
    if not result['booted']:
        return result
    rc, out, _err = systemd.systemctl(module, ['--version'], check=False)
    if rc == 0:
        result['systemd_version'] = parse_version(out)
    keys = ['MemoryCurrent', 'ControlGroup', 'OOMPolicy'] + [key for _name, key in PROPERTIES]
    props = systemd.show(module, unit, keys)
    usage = props.get('MemoryCurrent', '')
    if usage.isdigit() and int(usage) < 2 ** 64 - 1:
        result['usage'] = int(usage)
    if props.get('ControlGroup'):
        result['path'] = props['ControlGroup']
    for name, key in PROPERTIES:
        if props.get(key, '[not set]') != '[not set]':
            result['current'][name] = show_value(props[key])
    if 'OOMPolicy' in props:
        result['current']['oom_group'] = props['OOMPolicy'] == 'kill'
    result['max'] = result['current'].get('max')
    return result


class UnitFlow(Flow):
    """memory_limit for a systemd unit: a drop-in of ours (persist) or runtime properties."""

    def run(self, layout):
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
        wanted, literal = self.request(unit, version, props)
        legacy = legacy_limit(version, props)
        if persist:
            self.dropin(unit, wanted, literal, props, legacy)
        else:
            self.runtime(unit, wanted, literal, props, legacy)

    def request(self, unit, version, props):
        """The limits asked for, checked against the unit and the host."""
        if self.params['state'] == 'absent':
            if given(self.params):
                raise LimitRefused('state: absent removes every limit this module set on unit %s and takes no values; '
                                   'remove %s from the task' % (unit, ', '.join(given(self.params))))
            return {}, {}
        wanted, literal = self.wanted_limits()
        if 'oom_group' in wanted and unit_kind(unit) not in ('service', 'scope'):
            raise LimitRefused('oom_group cannot be set on %s: only services and scopes have an OOM policy' % unit)
        self.check_order(wanted, props.get('max'))
        self.check_usage(wanted, props.get('current', {}), props.get('usage'), unit)
        ignored = [n for n in ('high', 'swap_max', 'low', 'min') if n in wanted]
        if version == 'v1' and ignored:
            self.warnings.append('systemd applies %s only on the unified (v2) cgroup hierarchy; this host runs '
                                 'the memory controller on v1, so only max takes effect here (the drop-in keeps '
                                 'the values for a v2 boot)' % ', '.join(ignored))
        return wanted, literal

    def dropin(self, unit, wanted, literal, props, legacy):
        path = dropin_path(unit, self.root)
        self.result['dropin'] = path
        before_text = read_text(path)
        before = parse_dropin(before_text) if before_text is not None else {}
        if self.params['state'] == 'absent':
            outcome = systemd.remove_dropin(path, check_mode=self.check)
            after_text = ''
        else:
            after_text = render_dropin(unit, wanted, literal, legacy_limit=legacy)
            outcome = systemd.write_dropin(path, after_text, check_mode=self.check)
        after = parse_dropin(after_text) if after_text else {}
        self.reload(unit, outcome['changed'], props)
        self.result['changed'] = outcome['changed']
        limits = dict((n, {'before': before.get(n), 'after': after.get(n)})
                      for n in sorted(set(before) | set(after), key=cgroups.LIMIT_NAMES.index))
        self.result['limits'] = limits

        def render(side):
            return ''.join('%s = %s\n' % (n, limits[n][side]) for n in limits if limits[n][side] is not None)
        self.result['diff'] = [
            dict(before=before_text or '', after=after_text, before_header=path, after_header=path),
            dict(before=render('before'), after=render('after'), before_header='%s limits' % unit,
                 after_header='%s limits' % unit),
        ]

    def reload(self, unit, changed, props):
        """daemon-reload after a changed drop-in, unless runtime or daemon_reload say not to."""
        if not changed:
            return
        if not self.params['runtime']:
            self.warnings.append('the drop-in for %s changed but runtime: false skipped daemon-reload; the limits take '
                                 'effect at the next daemon-reload or reboot' % unit)
        elif not props['booted']:
            self.warnings.append('systemd is not running on this host, so no daemon-reload ran; the drop-in for %s '
                                 'takes effect when systemd starts' % unit)
        elif self.params['daemon_reload']:
            self.result['daemon_reload'] = True
            if not self.check:
                systemd.daemon_reload(self.module)

    def runtime(self, unit, wanted, literal, props, legacy):
        if 'oom_group' in wanted:
            raise LimitRefused('oom_group on unit %s needs persist: true: OOMPolicy= cannot be set at runtime' % unit)
        current = props.get('current', {})
        if self.params['state'] == 'absent':
            wanted, literal = dict((n, cgroups.DEFAULTS[n]) for n in SIZE_LIMITS), {}
        assignments = [text for name, text in property_assignments(wanted, literal, legacy_limit=legacy)
                       if name not in current
                       or cgroups.kernel_rounded(current[name]) != cgroups.kernel_rounded(wanted[name])]
        changed = bool(assignments)
        if changed and not props['booted']:
            raise LimitRefused('persist: false sets the limits of unit %s through the running systemd, which this host '
                               'does not run; use persist: true to write a drop-in' % unit)
        if changed and not self.check:
            systemd.systemctl(self.module, ['set-property', '--runtime', '--', unit] + assignments)
        self.result['changed'] = changed
        self.result['limits'] = dict((n, {'before': show(current[n]) if n in current else None,
                                          'after': show(wanted[n])}) for n in wanted)
        before = ''.join('%s=%s\n' % (n, show(current[n]) if n in current else '(unknown)') for n in sorted(wanted))
        after = ''.join('%s=%s\n' % (n, show(wanted[n])) for n in sorted(wanted))
        self.result['diff'] = dict(before=before, after=after, before_header='%s (runtime)' % unit,
                                   after_header='%s (runtime)' % unit)


def legacy_limit(version, props):
    """systemd < 240 on the v1 hierarchy knows only MemoryLimit=."""
    return version == 'v1' and props.get('systemd_version') is not None and props['systemd_version'] < 240
