# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which sysctl configuration file decides a setting at boot, the way systemd-sysctl does it.

Private to the oomguard.memory collection: no compatibility promise to other code.

Map: ``config_files(root)`` lists the files in the order they are applied (I/O);
``parse_sysctl_conf(text)`` and ``boot_setting(files, key)`` are pure. Rules (sysctl.d(5)):
``*.conf`` files from /etc/sysctl.d, /run/sysctl.d, /usr/local/lib/sysctl.d, /usr/lib/sysctl.d
and /lib/sysctl.d are merged by file name (a name in an earlier directory hides the same name in
a later one; a symlink to /dev/null masks it), applied in lexical order of their names, and
/etc/sysctl.conf comes last (procps ``sysctl --system``). A later assignment wins.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.oomguard.memory.plugins.module_utils.files import FileError, read_regular
from ansible_collections.oomguard.memory.plugins.module_utils.procfs import path_in

SYSCTL_DIRS = ('/etc/sysctl.d', '/run/sysctl.d', '/usr/local/lib/sysctl.d', '/usr/lib/sysctl.d', '/lib/sysctl.d')
SYSCTL_CONF = '/etc/sysctl.conf'


def normalize_key(key):
    """'vm/swappiness' and 'vm.swappiness' name the same setting."""
    return key.strip().lstrip('-').replace('/', '.')


def parse_sysctl_conf(text):
    """[(key, value, line_number)] for every assignment; comments (# ;) and blanks skipped."""
    found = []
    for number, line in enumerate((text or '').splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in '#;':
            continue
        key, sep, value = stripped.partition('=')
        if not sep:
            continue
        found.append((normalize_key(key), value.strip(), number))
    return found


def is_read_at_boot(name):
    """Whether systemd-sysctl and ``sysctl --system`` read a file of this name: '*.conf', and not
    hidden (a name starting with '.', such as '.conf', is skipped)."""
    return name.endswith('.conf') and not name.startswith('.')


def config_files(root='/'):
    """Absolute paths (as on the host, not under ``root``) in the order they are applied."""
    by_name = {}
    for directory in SYSCTL_DIRS:
        try:
            names = os.listdir(path_in(root, directory))
        except OSError:
            continue
        for name in names:
            if is_read_at_boot(name) and name not in by_name:
                by_name[name] = os.path.join(directory, name)
    ordered = []
    for name in sorted(by_name):
        path = by_name[name]
        real = path_in(root, path)
        if os.path.islink(real) and os.readlink(real) == '/dev/null':
            continue
        ordered.append(path)
    if os.path.isfile(path_in(root, SYSCTL_CONF)):
        ordered.append(SYSCTL_CONF)
    return ordered


def read_files(paths, root='/'):
    """[(path, text)] for the given host paths; unreadable files (and FIFOs, devices: never read,
    so nothing can hang) give ''."""
    out = []
    for path in paths:
        try:
            data = read_regular(path_in(root, path))
        except FileError:
            data = None
        out.append((path, (data or b'').decode('utf-8', 'replace')))
    return out


def boot_setting(files, key):
    """(value, path) of the assignment of ``key`` that wins at boot, or (None, None).

    files: [(path, text)] in application order, as from read_files(config_files()).
    """
    key = normalize_key(key)
    value, source = None, None
    for path, text in files:
        for found_key, found_value, _number in parse_sysctl_conf(text):
            if found_key == key:
                value, source = found_value, path
    return value, source


def same_file(path_a, path_b, root='/'):
    """True when two host paths are the same file (Debian's 99-sysctl.conf -> ../sysctl.conf)."""
    try:
        return os.path.samefile(path_in(root, path_a), path_in(root, path_b))
    except OSError:
        return path_a == path_b
