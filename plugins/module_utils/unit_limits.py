# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Memory limits of systemd units: the drop-in memory_limit writes, and what systemctl reports.

Private to the oomguard.memory collection: no compatibility promise to other code.

Limit names are the module's (max, high, swap_max, low, min, oom_group); PROPERTIES maps them to
systemd's resource-control keys. Rendering and parsing are pure (text in, data out); only
systemd_properties() runs a command.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from ansible_collections.oomguard.memory.plugins.module_utils import systemd
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


def format_value(value, literal=None):
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
            out.append((name, '%s=%s' % (key, format_value(wanted[name], literal.get(name)))))
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
    rc, out, _err = module.run_command(['systemctl', '--version'], environ_update={'LC_ALL': 'C'})
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
