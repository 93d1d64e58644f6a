# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readers for the kernel files oomguard looks at: /proc, and the cgroup mounts.

Private to the oomguard.memory collection: no compatibility promise to other code.

Map: one ``read_<file>`` per kernel file, each taking ``root`` (default '/') so tests point it
at a fake tree; reading (``_read``) and parsing (``parse_<file>``, text in, data out) are
separate. A missing optional file calls ``warn`` and returns None; a missing required file
raises ProcError naming the path; a process that vanished raises ProcessGone.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import os

from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError


class ProcError(OomguardError):
    """A kernel file could not be read; str() names the path."""


class ProcessGone(ProcError):
    """The process exited while we were looking at it: callers skip it."""


def path_in(root, path):
    """Join an absolute kernel path under a root ('/' for the real machine)."""
    return os.path.join(root or '/', path.lstrip('/'))


def _read(root, path, optional=False, warn=None):
    full = path_in(root, path)
    try:
        with open(full, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')
    except (IOError, OSError) as exc:
        if exc.errno in (errno.ENOENT, errno.ESRCH) and path.startswith('/proc/') and path.split('/')[2].isdigit():
            raise ProcessGone('%s: process is gone' % full)
        if optional and exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EINVAL, errno.EOPNOTSUPP):
            if warn is not None:
                warn('%s is not available (%s); continuing without it' % (full, exc.strerror))
            return None
        raise ProcError('cannot read %s: %s' % (full, exc.strerror))


# ---- /proc/meminfo, /proc/vmstat, /proc/swaps, /proc/pressure/memory, /proc/mounts

def parse_meminfo(text):
    """'MemTotal:  24576 kB' lines to {'MemTotal': 24576, ...} (kB, or plain counts)."""
    info = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(':')
        fields = rest.split()
        if sep and fields and fields[0].isdigit():
            info[key.strip()] = int(fields[0])
    return info


def read_meminfo(root='/'):
    return parse_meminfo(_read(root, '/proc/meminfo'))


def read_uptime(root='/'):
    """Seconds since boot (first field of /proc/uptime)."""
    text = _read(root, '/proc/uptime')
    try:
        return float(text.split()[0])
    except (IndexError, ValueError):
        raise ProcError('/proc/uptime: expected seconds, found %r' % text[:40])


def parse_vmstat(text):
    stats = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].lstrip('-').isdigit():
            stats[fields[0]] = int(fields[1])
    return stats


def read_vmstat(root='/', warn=None):
    text = _read(root, '/proc/vmstat', optional=True, warn=warn)
    return None if text is None else parse_vmstat(text)


def unescape_octal(text):
    """Undo the kernel's \\040-style escaping of spaces, tabs, newlines and backslashes."""
    if '\\' not in text:
        return text
    out, i = [], 0
    while i < len(text):
        chunk = text[i + 1:i + 4]
        if text[i] == '\\' and len(chunk) == 3 and all(c in '01234567' for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return ''.join(out)


def parse_swaps(text):
    """/proc/swaps to [{path, type, size_kb, used_kb, priority}], header skipped."""
    swaps = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5:
            continue
        try:
            swaps.append({'path': unescape_octal(fields[0]), 'type': fields[1], 'size_kb': int(fields[2]),
                          'used_kb': int(fields[3]), 'priority': int(fields[4])})
        except ValueError:
            continue
    return swaps


def read_swaps(root='/', warn=None):
    text = _read(root, '/proc/swaps', optional=True, warn=warn)
    return [] if text is None else parse_swaps(text)


def parse_pressure(text):
    """PSI 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0' lines to {some: {...}, full: {...}}."""
    result = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] not in ('some', 'full'):
            continue
        values = {}
        for field in fields[1:]:
            key, sep, num = field.partition('=')
            if sep:
                try:
                    values[key] = int(num) if key == 'total' else float(num)
                except ValueError:
                    values[key] = None
        result[fields[0]] = values
    return result


def read_pressure(root='/', resource='memory', warn=None):
    """PSI for a resource, or None on kernels without CONFIG_PSI (or with psi=0)."""
    text = _read(root, '/proc/pressure/%s' % resource, optional=True, warn=warn)
    return None if text is None else parse_pressure(text)


def parse_mounts(text):
    """/proc/mounts (or /etc/mtab) to [{device, mountpoint, fstype, options}]."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            mounts.append({'device': unescape_octal(fields[0]), 'mountpoint': unescape_octal(fields[1]),
                           'fstype': fields[2], 'options': fields[3].split(',')})
    return mounts


def read_mounts(root='/'):
    return parse_mounts(_read(root, '/proc/mounts'))


def mount_of(path, mounts):
    """The mount entry holding ``path`` (the longest mountpoint prefix; the last of equals,
    since a later mount hides an earlier one on the same point)."""
    best = None
    path = os.path.normpath(path)
    for mount in mounts:
        point = mount['mountpoint']
        if path == point or path.startswith(point.rstrip('/') + '/') or point == '/':
            if best is None or len(point) >= len(best['mountpoint']):
                best = mount
    return best


# ---- /proc/<pid>/...

def list_pids(root='/'):
    try:
        names = os.listdir(path_in(root, '/proc'))
    except OSError as exc:
        raise ProcError('cannot list %s: %s' % (path_in(root, '/proc'), exc.strerror))
    return sorted(int(name) for name in names if name.isdigit())


def parse_pid_stat(text):
    """/proc/<pid>/stat to {pid, comm, state, ppid, pgrp, flags, starttime, rss_pages}.
    comm may hold spaces and parentheses, so it ends at the last ')'."""
    open_at, close_at = text.find('('), text.rfind(')')
    if open_at < 0 or close_at < open_at:
        raise ProcError('malformed stat line: %r' % text[:80])
    rest = text[close_at + 2:].split()
    # Field numbers below follow proc(5), counted from 'state' (field 3) onwards.
    return {'pid': int(text[:open_at]), 'comm': text[open_at + 1:close_at], 'state': rest[0],
            'ppid': int(rest[1]), 'pgrp': int(rest[2]), 'flags': int(rest[6]),
            'starttime': int(rest[19]), 'rss_pages': int(rest[21])}


# PF_KTHREAD from include/linux/sched.h: kernel threads must never be touched.
PF_KTHREAD = 0x00200000


def is_kernel_thread(stat):
    return bool(stat['flags'] & PF_KTHREAD) or stat['pid'] == 2 or stat['ppid'] == 2


def read_pid_stat(pid, root='/'):
    return parse_pid_stat(_read(root, '/proc/%d/stat' % pid))


def parse_pid_status(text):
    """/proc/<pid>/status to {key: raw text}; sizes like 'VmRSS' are also given as ints in kB
    under '<key>_kb'."""
    status = {}
    for line in text.splitlines():
        key, sep, value = line.partition(':')
        if not sep:
            continue
        value = value.strip()
        status[key] = value
        if value.endswith(' kB') and value[:-3].strip().isdigit():
            status[key + '_kb'] = int(value[:-3])
    return status


def read_pid_status(pid, root='/'):
    return parse_pid_status(_read(root, '/proc/%d/status' % pid))


def read_pid_cmdline(pid, root='/'):
    """The argument list; empty for kernel threads and zombies."""
    text = _read(root, '/proc/%d/cmdline' % pid)
    return text.split('\0')[:-1] if text.endswith('\0') else ([text] if text else [])


def _read_int(root, path):
    text = _read(root, path).strip()
    try:
        return int(text)
    except ValueError:
        raise ProcError('%s: expected a number, found %r' % (path_in(root, path), text[:40]))


def read_pid_oom_score(pid, root='/'):
    return _read_int(root, '/proc/%d/oom_score' % pid)


def read_pid_oom_score_adj(pid, root='/'):
    return _read_int(root, '/proc/%d/oom_score_adj' % pid)


def parse_pid_cgroup(text):
    """/proc/<pid>/cgroup to [{id, controllers, path}]; v2 is id 0 with no controllers."""
    entries = []
    for line in text.splitlines():
        parts = line.split(':', 2)
        if len(parts) == 3 and parts[0].isdigit():
            entries.append({'id': int(parts[0]), 'controllers': [c for c in parts[1].split(',') if c],
                            'path': parts[2]})
    return entries


def read_pid_cgroup(pid, root='/'):
    return parse_pid_cgroup(_read(root, '/proc/%d/cgroup' % pid))


def cgroup_of(entries, controller):
    """The process's cgroup path in the hierarchy of ``controller`` ('memory', 'name=systemd'):
    its v1 line, else the unified (v2, id 0) one, else None."""
    for entry in entries:
        if controller in entry['controllers']:
            return entry['path']
    for entry in entries:
        if entry['id'] == 0:
            return entry['path']
    return None


def memory_cgroup_of(entries):
    """The process's cgroup path in the memory controller's hierarchy (v1 'memory' line, else v2)."""
    return cgroup_of(entries, 'memory')


# ---- cgroup layout

def detect_cgroup_layout(root='/', mounts=None):
    """Where the memory controller lives.

    Returns {layout, memory_version, memory_root, unified_root}: layout is 'v1' (only v1
    hierarchies), 'v2' (one unified hierarchy), 'hybrid' (both mounted) or None (no cgroups);
    memory_version is 'v1' or 'v2' for the hierarchy that owns the memory controller (None when
    no hierarchy has it); memory_root and unified_root are real paths (under ``root``).
    """
    if mounts is None:
        mounts = read_mounts(root)
    v1_memory = unified = None
    has_v1 = False
    for mount in mounts:
        if mount['fstype'] == 'cgroup':
            has_v1 = True
            if 'memory' in mount['options'] and v1_memory is None:
                v1_memory = mount['mountpoint']
        elif mount['fstype'] == 'cgroup2' and unified is None:
            unified = mount['mountpoint']
    unified_has_memory = False
    if unified is not None:
        controllers = _read(root, unified.rstrip('/') + '/cgroup.controllers', optional=True)
        unified_has_memory = controllers is not None and 'memory' in controllers.split()
    layout = 'hybrid' if (has_v1 and unified) else 'v1' if has_v1 else 'v2' if unified else None
    if v1_memory is not None:
        memory_version, memory_root = 'v1', v1_memory
    elif unified_has_memory:
        memory_version, memory_root = 'v2', unified
    else:
        memory_version = memory_root = None
    return {'layout': layout, 'memory_version': memory_version,
            'memory_root': None if memory_root is None else path_in(root, memory_root),
            'unified_root': None if unified is None else path_in(root, unified)}


# ---- /proc/sys, /proc/stat, memory cgroup OOM counters

def read_sysctl(name, root='/', warn=None):
    """A /proc/sys value such as 'vm.swappiness' as int (or text when not a number); None (and a
    warning) when this kernel has no such setting."""
    text = _read(root, '/proc/sys/' + name.replace('.', '/'), optional=True, warn=warn)
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.lstrip('-').isdigit() else text


def read_boot_time(root='/'):
    """Epoch seconds at which this boot started ('btime' in /proc/stat)."""
    for line in _read(root, '/proc/stat').splitlines():
        if line.startswith('btime '):
            return int(line.split()[1])
    raise ProcError('%s has no btime line' % path_in(root, '/proc/stat'))


def parse_memcg_oom_counters(text):
    """memory.events (v2: 'oom N', 'oom_kill N') or memory.oom_control (v1: 'oom_kill N', no
    'oom' count) to {oom, oom_kill}; a count the kernel does not print is None."""
    values = parse_vmstat(text)
    return {'oom': values.get('oom'), 'oom_kill': values.get('oom_kill')}


def read_memcg_oom_counters(layout, warn=None):
    """Every memory cgroup with a non-zero OOM counter: [{path, oom, oom_kill}], path relative to
    the memory controller's root ('/' + ...). ``layout`` is detect_cgroup_layout()'s result."""
    top = layout.get('memory_root')
    if not top:
        return []
    name = 'memory.events' if layout['memory_version'] == 'v2' else 'memory.oom_control'
    found = []
    for directory, subdirs, filenames in os.walk(top):
        subdirs.sort()
        if name not in filenames:
            continue
        try:
            with open(os.path.join(directory, name)) as handle:
                counters = parse_memcg_oom_counters(handle.read())
        except (IOError, OSError) as exc:
            if warn is not None and exc.errno != errno.ENOENT:  # a cgroup removed meanwhile is no news
                warn('cannot read %s: %s' % (os.path.join(directory, name), exc.strerror))
            continue
        if counters['oom'] or counters['oom_kill']:
            relative = os.path.relpath(directory, top)
            counters['path'] = '/' if relative == '.' else '/' + relative
            found.append(counters)
    return found
