# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Memory cgroup limits: where they live and how the kernel spells them, for cgroup v1 and v2.

Private to the oomguard.memory collection: no compatibility promise to other code.

Limits are named the cgroup v2 way everywhere (max, high, swap_max, low, min, oom_group);
``limit_files()`` maps them to the files of one hierarchy version. Values are bytes (int),
None for "no limit" (v2 ``max``, v1 ``-1`` which reads back as 9223372036854771712), or a bool
for oom_group. The kernel stores limits in pages and rounds down: ``kernel_rounded()`` predicts
what a file will read back, so a second run compares equal.

Everything that touches the filesystem takes the cgroup directory (already joined under the
memory root, which callers get from procfs.detect_cgroup_layout(root)), so tests use fake trees.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import os
import re

from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.sizes import human_size

PAGE_SIZE = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096

LIMIT_NAMES = ('max', 'high', 'swap_max', 'low', 'min', 'oom_group')

V1_FILES = {
    'max': 'memory.limit_in_bytes',
    # v1 has no throttling limit; the soft limit is the nearest thing (reclaim pressure under
    # global memory shortage), documented as an approximation.
    'high': 'memory.soft_limit_in_bytes',
    # v1 limits memory+swap together: memsw = max + swap_max.
    'swap_max': 'memory.memsw.limit_in_bytes',
}
V2_FILES = {
    'max': 'memory.max',
    'high': 'memory.high',
    'swap_max': 'memory.swap.max',
    'low': 'memory.low',
    'min': 'memory.min',
    'oom_group': 'memory.oom.group',
}
USAGE_FILES = {'v1': 'memory.usage_in_bytes', 'v2': 'memory.current'}

# What a freshly made cgroup holds; also what state=absent puts back.
DEFAULTS = {'max': None, 'high': None, 'swap_max': None, 'low': 0, 'min': 0, 'oom_group': False}

_NAME_RE = re.compile(r'^[^/\x00-\x1f\x7f]+$')


class CgroupError(OomguardError):
    """A cgroup could not be read or changed; str() is the sentence to show."""


def limit_files(version):
    """{limit name: interface file} for 'v1' or 'v2'."""
    if version == 'v1':
        return dict(V1_FILES)
    if version == 'v2':
        return dict(V2_FILES)
    raise CgroupError('unknown cgroup version %r' % (version,))


def normalize_cgroup_path(path):
    """Check a cgroup path relative to the memory controller's root; return it as 'a/b'.

    A leading or trailing '/' is accepted; empty, '.', '..' and control characters are not,
    and neither is the root cgroup itself (its limits cannot be set).
    """
    if not isinstance(path, str):
        raise CgroupError('cgroup: expected a path such as batch/jobs, got %r' % (path,))
    parts = [p for p in path.strip().split('/') if p != '']
    if not parts:
        raise CgroupError('cgroup: %r names the root cgroup, whose memory limits the kernel does not let you set; '
                          'name a child such as batch/jobs' % (path,))
    for part in parts:
        if len(part.encode('utf-8', 'surrogateescape')) > 255:
            raise CgroupError('cgroup: %r has a component longer than the 255 bytes a directory name may have'
                              % (path[:80] + '...',))
        if part in ('.', '..') or not _NAME_RE.match(part):
            raise CgroupError('cgroup: %r is not a plain path below the memory root (no ".", ".." or control '
                              'characters); write it like batch/jobs' % (path,))
        if part.startswith('cgroup.') or part.startswith('memory.'):
            raise CgroupError('cgroup: %r has a component named like a kernel interface file (%s); choose another name'
                              % (path, part))
    return '/'.join(parts)


def cgroup_dir(memory_root, path):
    """The directory of cgroup ``path`` (normalized) under the memory root."""
    return os.path.join(memory_root, *normalize_cgroup_path(path).split('/'))


def kernel_rounded(value, page_size=PAGE_SIZE):
    """What the kernel stores for a byte limit: rounded down to whole pages (None stays None)."""
    if value is None or isinstance(value, bool):
        return value
    return value // page_size * page_size


def v1_unlimited(page_size=PAGE_SIZE):
    """What a v1 limit file reads when unlimited: LONG_MAX rounded down to pages."""
    return (2 ** 63 - 1) // page_size * page_size


def parse_value(text, version, name='max', page_size=PAGE_SIZE):
    """Read one interface file's text into bytes, None (unlimited) or a bool (oom_group)."""
    text = text.strip()
    if name == 'oom_group':
        return text == '1'
    if text == 'max':
        return None
    try:
        value = int(text)
    except ValueError:
        raise CgroupError('unexpected content %r in a memory limit file' % text)
    if version == 'v1' and value >= v1_unlimited(page_size):
        return None
    return value


def interface_text(value, version, name='max'):
    """The text to write into an interface file."""
    if name == 'oom_group':
        return '1' if value else '0'
    if value is None:
        return '-1' if version == 'v1' else 'max'
    return '%d' % value


def read_interface(path, error=CgroupError, missing=(errno.ENOENT,)):
    """The text of an interface file, None when reading it fails with an errno in ``missing``;
    any other failure raises ``error`` (an OomguardError class) with the sentence."""
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if exc.errno in missing:
            return None
        raise error('cannot read %s: %s' % (path, exc.strerror))


def write_interface(path, text, error=CgroupError):
    """Write an existing interface file (never creates one: cgroupfs makes its own files); a
    failure raises ``error`` (an OomguardError class) with the sentence."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    except (IOError, OSError) as exc:
        raise error('cannot open %s for writing: %s' % (path, exc.strerror))
    try:
        os.write(fd, text.encode('ascii'))
    except (IOError, OSError) as exc:
        raise error('the kernel refused %r in %s: %s' % (text.strip(), path, exc.strerror))
    finally:
        os.close(fd)


def _read(path):
    return read_interface(path)


def write_file(path, text):
    """Write an existing interface file of a cgroup this collection manages."""
    write_interface(path, text)


def exists(directory):
    return os.path.isdir(directory)


def read_limits(directory, version, page_size=PAGE_SIZE):
    """Current limits of the cgroup at ``directory``: {name: value} for the names this version has.

    On v1, swap_max is memsw - max (None when memsw is unlimited); it is missing from the result
    when the kernel has no swap accounting. On v2, files the kernel did not create (no swap
    controller) are missing from the result too.
    """
    result = {}
    for name, filename in limit_files(version).items():
        text = _read(os.path.join(directory, filename))
        if text is None:
            continue
        result[name] = parse_value(text, version, name, page_size)
    if version == 'v1' and 'swap_max' in result:
        memsw, limit = result['swap_max'], result.get('max')
        result['swap_max'] = None if memsw is None or limit is None else memsw - limit
    return result


def read_usage(directory, version):
    """Bytes the cgroup uses now (v1 memory.usage_in_bytes, v2 memory.current), or None."""
    text = _read(os.path.join(directory, USAGE_FILES[version]))
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise CgroupError('unexpected content %r in %s' % (text.strip(), os.path.join(directory, USAGE_FILES[version])))


def read_procs(directory):
    """PIDs in the cgroup itself (not its children)."""
    text = _read(os.path.join(directory, 'cgroup.procs'))
    return [int(line) for line in (text or '').split()]


def child_cgroups(directory):
    try:
        return sorted(e for e in os.listdir(directory) if os.path.isdir(os.path.join(directory, e)))
    except OSError:
        return []


def v1_writes(current, wanted, page_size=PAGE_SIZE):
    """Ordered [(filename, text)] that move a v1 cgroup from ``current`` to ``wanted`` limits.

    ``wanted`` holds only the limits asked for (max, high, swap_max). The kernel keeps
    memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every moment, so when max grows
    past the current memsw, memsw is written first. Raises CgroupError, before anything is
    written, for a combination the kernel would reject.
    """
    writes = []
    new_max = wanted['max'] if 'max' in wanted else current.get('max')
    cur_memsw = _memsw(current.get('max'), current.get('swap_max'))
    new_memsw = cur_memsw
    if 'swap_max' in wanted:
        if 'swap_max' not in current:
            raise CgroupError('swap_max needs memory.memsw.limit_in_bytes, which this kernel lacks (swap accounting '
                              'is off; boot with swapaccount=1), so it cannot be set on cgroup v1 here')
        new_memsw = _memsw(new_max, wanted['swap_max'])
    elif 'max' in wanted and new_memsw is not None and (
            new_max is None or kernel_rounded(new_max, page_size) > new_memsw):
        raise CgroupError('max=%s would exceed memory.memsw.limit_in_bytes (%s), which the kernel refuses on '
                          'cgroup v1; give swap_max as well' % (human_size(new_max), human_size(new_memsw)))
    max_write = None
    if 'max' in wanted and not _same(current.get('max'), new_max, page_size):
        max_write = (V1_FILES['max'], interface_text(new_max, 'v1'))
    memsw_write = None
    if 'swap_max' in wanted and not _same(cur_memsw, new_memsw, page_size):
        memsw_write = (V1_FILES['swap_max'], interface_text(new_memsw, 'v1'))
    grows = new_max is None or cur_memsw is not None and kernel_rounded(new_max, page_size) > cur_memsw
    if memsw_write and max_write and grows:
        writes += [memsw_write, max_write]
    else:
        writes += [w for w in (max_write, memsw_write) if w]
    if 'high' in wanted and not _same(current.get('high'), wanted['high'], page_size):
        writes.append((V1_FILES['high'], interface_text(wanted['high'], 'v1')))
    return writes


def v2_writes(current, wanted, page_size=PAGE_SIZE):
    """Ordered [(filename, text)] that move a v2 cgroup from ``current`` to ``wanted``."""
    writes = []
    for name in LIMIT_NAMES:
        if name not in wanted:
            continue
        if name not in current:
            raise CgroupError('%s needs %s, which this cgroup does not have (is the %s controller enabled?)'
                              % (name, V2_FILES[name], 'swap' if name == 'swap_max' else 'memory'))
        if not _same(current[name], wanted[name], page_size):
            writes.append((V2_FILES[name], interface_text(wanted[name], 'v2', name)))
    return writes


def expected_after(current, wanted, version, page_size=PAGE_SIZE):
    """The limits read_limits() will report once ``wanted`` is applied (page-rounded)."""
    after = dict(current)
    for name, value in wanted.items():
        after[name] = kernel_rounded(value, page_size)
    if version == 'v1' and 'swap_max' in after and ('swap_max' in wanted or 'max' in wanted):
        # memsw is rounded on its own: swap_max reads back as round(max + swap) - round(max).
        limit = after.get('max')
        swap = wanted['swap_max'] if 'swap_max' in wanted else current.get('swap_max')
        if 'swap_max' in wanted:
            memsw = _memsw(wanted.get('max', current.get('max')), swap)
        else:
            memsw = _memsw(current.get('max'), current.get('swap_max'))
        after['swap_max'] = None if memsw is None or limit is None else kernel_rounded(memsw, page_size) - limit
    return after


def _memsw(limit, swap):
    if limit is None or swap is None:
        return None
    return limit + swap


def _same(a, b, page_size):
    return kernel_rounded(a, page_size) == kernel_rounded(b, page_size)


def apply_writes(directory, writes):
    for filename, text in writes:
        write_file(os.path.join(directory, filename), text)


def make_dir(path):
    """mkdir one cgroup (the kernel fills it with its interface files)."""
    try:
        os.mkdir(path)
    except (IOError, OSError) as exc:
        raise CgroupError('cannot create cgroup %s: %s' % (path, exc.strerror))


def remove_dir(path):
    """rmdir one empty cgroup (the kernel drops its interface files with it)."""
    try:
        os.rmdir(path)
    except (IOError, OSError) as exc:
        raise CgroupError('cannot remove cgroup %s: %s' % (path, exc.strerror))


def v2_missing_subtree_control(memory_root, rel_path):
    """Directories (root first) whose cgroup.subtree_control must gain +memory so that the
    cgroup ``rel_path`` gets the memory files. Only existing ancestors are inspected; a parent
    created by us is listed too (its subtree_control will exist once the kernel made it)."""
    missing = []
    parts = normalize_cgroup_path(rel_path).split('/')
    current = memory_root
    for part in parts:
        control = _read(os.path.join(current, 'cgroup.subtree_control'))
        if control is None or 'memory' not in control.split():
            missing.append(current)
        current = os.path.join(current, part)
    return missing


def v2_enable_memory(directory):
    """Write +memory into ``directory``/cgroup.subtree_control, with a clear error on the usual
    refusal (processes in a non-root cgroup: the "no internal processes" rule)."""
    path = os.path.join(directory, 'cgroup.subtree_control')
    try:
        write_file(path, '+memory')
    except CgroupError:
        controllers = (_read(os.path.join(directory, 'cgroup.controllers')) or '').split()
        if 'memory' not in controllers:
            raise CgroupError('cannot enable the memory controller below %s: its cgroup.controllers does not offer '
                              'memory (enable it in the parent first, or this hierarchy has no memory controller)'
                              % directory)
        if read_procs(directory):
            raise CgroupError('cannot enable the memory controller below %s: it holds processes, and cgroup v2 '
                              'allows controllers only below cgroups without processes; move them to a child first'
                              % directory)
        raise
