# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of module options that AnsibleModule's types let through.

Private to the oomguard.memory collection: no compatibility promise to other code.

``refuse_bools`` catches YAML ``yes``/``true`` given where a number belongs (Python's bool is an
int, so ``type: int`` accepts it as 1). ``check_path`` catches path values the kernel or a file
format cannot take (NUL bytes, empty, relative, too long, not UTF-8) before anything looks at the
host. Every error names the option and is one InputError sentence.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError

# linux/limits.h: PATH_MAX counts the final NUL; NAME_MAX is one path component.
PATH_MAX = 4096
NAME_MAX = 255


class InputError(OomguardError, ValueError):
    """An option value we refuse before touching the host; str() names the option."""


def refuse_bools(params, names):
    """Raise InputError when an int (or list-of-int) option in ``names`` holds a boolean."""
    for name in names:
        value = params.get(name)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(item, bool) for item in values):
            raise InputError('%s: %r is a boolean (YAML yes/no/true/false), not a number; write a whole number'
                             % (name, value))


def check_path(name, value, absolute=True):
    """Return ``value`` when it is a usable path; else raise InputError naming ``name``."""
    if not value:
        raise InputError('%s: the path is empty; give an absolute path' % name)
    if '\x00' in value:
        raise InputError('%s: %r contains a NUL byte, which no path can hold' % (name, value))
    try:
        encoded = value.encode('utf-8')
    except UnicodeError:
        raise InputError('%s: %r is not valid UTF-8; give the path in UTF-8' % (name, value))
    if absolute and not value.startswith('/'):
        raise InputError('%s: %r is relative; give an absolute path' % (name, value))
    if len(encoded) >= PATH_MAX:
        raise InputError('%s: the path is %d bytes long, more than Linux allows (%d)'
                         % (name, len(encoded), PATH_MAX - 1))
    longest = max(len(part.encode('utf-8')) for part in value.split('/'))
    if longest > NAME_MAX:
        raise InputError('%s: a component of the path is %d bytes long, more than Linux allows (%d)'
                         % (name, longest, NAME_MAX))
    return value
