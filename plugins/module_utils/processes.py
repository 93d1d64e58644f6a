# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find the processes a module should act on, and write their oom_score_adj.

Private to the oomguard.memory collection: no compatibility promise to other code.

Map: ``process_table(root)`` takes one snapshot of /proc (processes that exit while it is taken
are left out); ``match_pattern`` (comm or cmdline), ``in_control_group`` (the processes of a
systemd unit, from /proc/<pid>/cgroup) and ``descendants`` pick pids from it;
``select_targets`` applies the rules every caller needs (kernel threads never, PID 1 only when
named, the caller's own process never). ``write_oom_score_adj`` and ``has_capability`` are
the two kernel calls around a change. Everything takes ``root`` so tests point it at a fake tree.
``which`` and ``stream`` find and start the external commands (journalctl, dmesg, zstd) whose
output the log readers consume line by line.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import os
import re
import subprocess

from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.files import FileError, read_regular

from ansible_collections.oomguard.memory.plugins.module_utils.procfs import (
    ProcError, ProcessGone, cgroup_of, is_kernel_thread, list_pids, parse_pid_status, path_in,
    read_pid_cgroup, read_pid_cmdline, read_pid_stat)

# include/uapi/linux/capability.h
CAP_SYS_RESOURCE = 24
OOM_SCORE_ADJ_MIN = -1000
OOM_SCORE_ADJ_MAX = 1000
# include/linux/threads.h: no pid is ever above this (4194304 on 64-bit).
PID_MAX_LIMIT = 4 * 1024 * 1024


class TargetError(OomguardError, ValueError):
    """The request names no usable process (bad pidfile, bad regex, kernel thread...)."""


class AdjustDenied(ProcError):
    """The kernel refused an oom_score_adj write (EACCES/EPERM)."""


def process_table(root='/'):
    """{pid: stat dict} for every process, from one pass over /proc; vanished ones are skipped."""
    table = {}
    for pid in list_pids(root):
        try:
            stat = read_pid_stat(pid, root)
        except ProcessGone:
            continue
        stat['kernel'] = is_kernel_thread(stat)
        table[pid] = stat
    return table


def compile_pattern(pattern):
    """re.compile, turning a bad expression into one TargetError sentence."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise TargetError('process: %r is not a valid regular expression (%s); fix the pattern' % (pattern, exc))


def match_pattern(table, regex, match='comm', root='/'):
    """Pids whose comm (the 15-character kernel name) or whole command line (arguments joined by
    spaces) contains a match of ``regex`` (re.search: anchor it with ^...$ for exact names).
    Kernel threads have no command line and never match."""
    found = []
    for pid in sorted(table):
        stat = table[pid]
        if stat['kernel']:
            continue
        if match == 'comm':
            text = stat['comm']
        else:
            try:
                text = ' '.join(read_pid_cmdline(pid, root))
            except ProcessGone:
                continue
            if not text:   # zombies have an empty command line
                continue
        if regex.search(text):
            found.append(pid)
    return found


def _systemd_cgroup(entries):
    """The cgroup systemd tracks a process by: the name=systemd hierarchy (v1/hybrid), else v2."""
    return cgroup_of(entries, 'name=systemd')


def in_control_group(table, control_group, root='/'):
    """Pids inside a unit's cgroup (``systemctl show -p ControlGroup``) or below it."""
    if not control_group:
        return []
    prefix = control_group.rstrip('/') + '/'
    found = []
    for pid in sorted(table):
        if table[pid]['kernel']:
            continue
        try:
            path = _systemd_cgroup(read_pid_cgroup(pid, root))
        except ProcessGone:
            continue
        if path is not None and (path == control_group or path.startswith(prefix)):
            found.append(pid)
    return found


def descendants(table, pids):
    """Every process below ``pids`` in the process tree (children, grandchildren, ...)."""
    children = {}
    for pid, stat in table.items():
        children.setdefault(stat['ppid'], []).append(pid)
    seen, todo = set(), list(pids)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen - set(pids)


def own_pids(table, pid=None):
    """This process and the Ansible wrappers above it (the 'sh -c ... AnsiballZ_x.py' shell and
    python), which a cmdline pattern or a children walk could otherwise catch."""
    pid = os.getpid() if pid is None else pid
    own = {pid}
    parent = table.get(pid, {}).get('ppid')
    while parent and parent in table and parent != 1:
        try:
            cmdline = ' '.join(read_pid_cmdline(parent))
        except ProcError:
            break
        if 'AnsiballZ_' not in cmdline:
            break
        own.add(parent)
        parent = table[parent]['ppid']
    return own


def select_targets(table, seeds, children=True, explicit=False, exclude=()):
    """The processes to act on: the seeds (and, with children, their descendants), minus kernel
    threads, minus ``exclude``, minus PID 1 unless the caller named it (``explicit``). PID 1 is
    never expanded to its descendants: that would be every process on the host.

    Raises TargetError when an explicitly named pid is a kernel thread."""
    seeds = [pid for pid in seeds if pid in table]
    for pid in seeds:
        if explicit and table[pid]['kernel']:
            raise TargetError('pid %d (%s) is a kernel thread; oom_score_adj is only set on user processes'
                              % (pid, table[pid]['comm']))
    chosen = set(pid for pid in seeds if explicit or pid != 1)
    if children:
        # PID 1 has no parent, so it is never anyone's descendant.
        chosen |= descendants(table, [pid for pid in seeds if pid != 1])
    return sorted(pid for pid in chosen if not table[pid]['kernel'] and pid not in exclude)


def read_pidfile(path):
    """The one pid written in a pidfile; TargetError with a sentence when it holds none or more
    than one. Only a regular file is read: a FIFO or a device (/dev/zero) is refused, not waited on."""
    try:
        data = read_regular(path, limit=4096, what='pidfile')
    except FileError as exc:
        raise TargetError(str(exc))
    if data is None:
        raise TargetError('pidfile: cannot read %s (No such file or directory)' % path)
    text = data.decode('utf-8', 'replace')
    fields = text.split()
    if not fields or not fields[0].isdigit() or int(fields[0]) < 1 or len(fields[0]) > 10:
        raise TargetError('pidfile: %s does not hold a process id (found %r)' % (path, text[:20]))
    if len(fields) > 1:
        raise TargetError('pidfile: %s holds more than one value (%s); point pidfile at a file with one process '
                          'id, or list the processes with pid:' % (path, ' '.join(fields[:4])))
    return int(fields[0])


def has_capability(bit, root='/'):
    """Whether this process holds capability ``bit`` in its effective set (CapEff)."""
    path = path_in(root, '/proc/self/status')
    try:
        with open(path) as handle:
            status = parse_pid_status(handle.read())
    except (IOError, OSError) as exc:
        raise ProcError('cannot read %s: %s' % (path, exc.strerror))
    try:
        return bool(int(status.get('CapEff', '0'), 16) >> bit & 1)
    except ValueError:
        raise ProcError('%s: CapEff is not a hex mask: %r' % (path, status.get('CapEff')))


def needs_capability(before, after):
    """Whether setting ``after`` over ``before`` needs CAP_SYS_RESOURCE.

    The kernel lets a process without it lower oom_score_adj down to a floor (oom_score_adj_min)
    that is only moved by a privileged write, and that /proc does not show. For every process no
    privileged writer has set, the floor is 0: raising is always allowed, lowering to 0 or above
    is allowed, going below 0 is not. We predict with that floor; a process whose floor a
    privileged writer moved can still refuse at write time (callers roll back then)."""
    return after < before and after < 0


def stronger(current, wanted):
    """Whether oom_score_adj ``current`` already goes further than ``wanted`` in its direction:
    lower than a negative wanted value, higher than a positive one."""
    return current < wanted < 0 or current > wanted > 0


def write_oom_score_adj(pid, value, root='/'):
    """Write /proc/<pid>/oom_score_adj. ProcessGone if the process exited, AdjustDenied if the
    kernel refused."""
    path = path_in(root, '/proc/%d/oom_score_adj' % pid)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ESRCH):
            raise ProcessGone('%s: process is gone' % path)
        raise ProcError('cannot open %s: %s' % (path, exc.strerror))
    try:
        os.write(fd, ('%d\n' % value).encode())
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ESRCH):
            raise ProcessGone('%s: process is gone' % path)
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise AdjustDenied('%s: the kernel refused %d (%s)' % (path, value, exc.strerror))
        raise ProcError('cannot write %s: %s' % (path, exc.strerror))
    finally:
        os.close(fd)


def user_processes(table, exclude=()):
    """Pids of every user process (no kernel threads, not PID 1, not ``exclude``)."""
    return set(pid for pid, stat in table.items() if not stat['kernel'] and pid != 1 and pid not in exclude)


def which(name, fallback=('/usr/bin', '/bin', '/usr/sbin', '/sbin')):
    """The path of the executable ``name`` on $PATH, then in the ``fallback`` folders; None when
    there is none."""
    for folder in os.environ.get('PATH', '').split(os.pathsep) + list(fallback):
        path = os.path.join(folder, name)
        if folder and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def stream(argv):
    """Start ``argv`` in the C locale with its output on a pipe (read it as it comes: run_command
    would hold the whole journal, gigabytes on a busy host, in memory)."""
    env = dict(os.environ, LC_ALL='C')
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)  # pylint: disable=ansible-bad-function


# fcntl.F_SETPIPE_SZ (Linux 2.6.35+), named in the fcntl module from Python 3.10 only
_F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20


def widen_pipe(pipe):
    """Let a pipe hold PIPE_BYTES (the unprivileged maximum by default), so the writer goes on
    while the reader works on what it read; on a 64 KiB pipe the two mostly take turns.
    Best effort: where the system refuses, the pipe keeps its size."""
    try:
        import fcntl
        fcntl.fcntl(pipe.fileno(), getattr(fcntl, 'F_SETPIPE_SZ', _F_SETPIPE_SZ), PIPE_BYTES)
    except (ImportError, AttributeError, ValueError, IOError, OSError):
        pass
