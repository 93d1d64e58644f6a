# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""systemd unit drop-ins, shared by the modules that persist a setting through a unit
(oom_score_adj: OOMScoreAdjust=, memory_limit: MemoryMax=).

Private to the oomguard.memory collection: no compatibility promise to other code.

Map: ``validate_unit`` checks and normalises a unit name; ``dropin_path`` / ``render_dropin`` /
``write_dropin`` / ``remove_dropin`` plan and (unless check mode) change a drop-in file under
/etc/systemd/system/<unit>.d/ through files.atomic_write; ``booted`` says whether systemd is
PID 1; ``systemctl`` is the one runner of systemctl (LC_ALL=C), which ``show``,
``daemon_reload`` and the callers' other subcommands go through.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import os
import re

from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.files import (
    FileError, atomic_write, fsync_dir, remove_file)
from ansible_collections.oomguard.memory.plugins.module_utils.procfs import path_in


class SystemdError(OomguardError):
    """A unit name is invalid or systemctl failed; str() is one sentence for the user."""


DROPIN_ROOT = '/etc/systemd/system'

UNIT_TYPES = ('service', 'socket', 'device', 'mount', 'automount', 'swap', 'target', 'path',
              'timer', 'slice', 'scope')

# Unit types whose processes systemd starts (exec context): [Service]-like settings such as
# OOMScoreAdjust= apply to these, in the section named after the type.
EXEC_SECTIONS = {'service': 'Service', 'socket': 'Socket', 'mount': 'Mount', 'swap': 'Swap'}

# systemd's unit name rules (unit-name.c): at most 255 characters, letters, digits and ':-_.\',
# one '@' for template instances, and a known type suffix.
_UNIT_RE = re.compile(r'^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.(%s)$' % '|'.join(UNIT_TYPES))
_DROPIN_NAME_RE = re.compile(r'^[A-Za-z0-9_.-]+$')


def validate_unit(name, types=None, option='unit'):
    """The unit name, with '.service' added when it has no type suffix (as systemctl does).

    ``types`` limits the accepted unit types (e.g. EXEC_SECTIONS). Template units (foo@.service)
    are refused: a drop-in for a template applies to every instance, which callers should ask
    for on purpose by naming an instance."""
    if not isinstance(name, str) or not name:
        raise SystemdError('%s: a unit name is required' % option)
    if '.' not in name.rsplit('@', 1)[-1] or name.rsplit('.', 1)[-1] not in UNIT_TYPES:
        name = name + '.service'
    if len(name) > 255 or not _UNIT_RE.match(name) or name.startswith('.'):
        raise SystemdError('%s: %r is not a valid systemd unit name (letters, digits and ":-_.\\@" only, '
                           'with a type suffix such as .service)' % (option, name))
    if name.split('.')[-2].endswith('@'):
        raise SystemdError('%s: %r is a template; name an instance (for example %s)'
                           % (option, name, name.replace('@.', '@NAME.')))
    unit_type = name.rsplit('.', 1)[1]
    if types is not None and unit_type not in types:
        raise SystemdError('%s: %r is a .%s unit; this setting applies to %s units only'
                           % (option, name, unit_type, ', '.join('.' + t for t in sorted(types))))
    return name


def section_for(unit):
    """The drop-in section for exec settings of ``unit`` ('Service' for foo.service)."""
    return EXEC_SECTIONS[unit.rsplit('.', 1)[1]]


def dropin_path(unit, name, root='/'):
    """/etc/systemd/system/<unit>.d/<name>.conf (under ``root``)."""
    if not _DROPIN_NAME_RE.match(name):
        raise SystemdError('drop-in name %r may only hold letters, digits and "_.-"' % name)
    if not name.endswith('.conf'):
        name += '.conf'
    return os.path.join(path_in(root, DROPIN_ROOT), unit + '.d', name)


def render_dropin(section, settings, comment=None):
    """The text of a drop-in: an optional '# comment' block, '[section]', then key=value lines
    in the given order (``settings`` is a list of (key, value) pairs)."""
    lines = []
    if comment:
        lines.extend('# ' + line if line else '#' for line in comment.splitlines())
    lines.append('[%s]' % section)
    for key, value in settings:
        text = str(value)
        if '\n' in text or '\n' in key:
            raise SystemdError('drop-in setting %s may not span lines' % key)
        lines.append('%s=%s' % (key, text))
    return '\n'.join(lines) + '\n'


def write_dropin(path, text, check_mode=False):
    """Create or update a drop-in (atomic_write result); makes the <unit>.d directory."""
    directory = os.path.dirname(path)
    if not check_mode and not os.path.isdir(directory):
        try:
            os.makedirs(directory, 0o755)
            fsync_dir(os.path.dirname(directory))
        except OSError as exc:
            raise FileError('cannot create %s: %s' % (directory, exc.strerror))
    if check_mode and not os.path.isdir(directory):
        return {'changed': True, 'before': None, 'after': text, 'path': path}
    return atomic_write(path, text, mode=0o644, check_mode=check_mode)


def remove_dropin(path, check_mode=False):
    """Delete a drop-in (remove_file result), and its <unit>.d directory once empty."""
    result = remove_file(path, check_mode=check_mode)
    if result['changed'] and not check_mode:
        try:
            os.rmdir(os.path.dirname(path))
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                raise FileError('cannot remove %s: %s' % (os.path.dirname(path), exc.strerror))
    return result


def booted(root='/'):
    """Whether systemd runs as PID 1 (sd_booted(): /run/systemd/system exists)."""
    return os.path.isdir(path_in(root, '/run/systemd/system'))


def systemctl(module, args, check=True):
    """The one place that runs systemctl: (rc, out, err) of ``systemctl ARGS`` with LC_ALL=C.
    With check, a failure is a SystemdError naming the command and systemctl's reason."""
    path = module.get_bin_path('systemctl')
    if path is None:
        raise SystemdError('systemctl was not found on this host; unit targets need systemd')
    rc, out, err = module.run_command([path] + list(args), environ_update={'LC_ALL': 'C'})
    if check and rc != 0:
        raise SystemdError('systemctl %s failed (rc=%d): %s' % (' '.join(args), rc, (err or out).strip()))
    return rc, out, err


def show(module, unit, properties):
    """{property: value} from ``systemctl show``; LoadState=not-found for unknown units."""
    _rc, out, _err = systemctl(module, ['show', unit] + ['--property=%s' % prop for prop in properties])
    values = {}
    for line in out.splitlines():
        key, sep, value = line.partition('=')
        if sep:
            values[key] = value
    return values


def daemon_reload(module):
    """systemctl daemon-reload, so systemd reads changed drop-ins; SystemdError on failure."""
    systemctl(module, ['daemon-reload'])
    return True
