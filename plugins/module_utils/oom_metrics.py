# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collector of the monitor role: OOM metrics for node_exporter's textfile collector.

Private to the oomguard.memory collection: no compatibility promise to other code.

The role installs this file with the module_utils it imports (oom_log, procfs, processes,
cgroups, files, errors) under one directory on the target and runs ``main()`` every minute
(systemd timer or cron). Nothing here parses an OOM report: the kernel log is read incrementally
(``_LogReader``: /dev/kmsg by sequence number, the journal by cursor, plain files by inode and
offset) and the lines go to ``oom_log``; the readers of /proc and the cgroup files are
``procfs`` and ``cgroups``.

Map of this file:

* ``load_config`` checks the JSON file the role writes (one clear sentence on a bad one).
* ``_LogReader`` reads what is new since the position kept in the state file.
* ``count_kills`` adds new kill events to the per (victim, memcg, oom_memcg) counters.
* ``gather`` builds every metric family; a part that fails is reported in
  ``oomguard_collector_success`` and as a comment, never as a missing file or a failed timer.
* ``render`` writes the Prometheus text exposition format (HELP and TYPE on every family, no
  timestamps); ``run`` writes it atomically (temporary file in the same directory, rename).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import calendar
import errno
import fcntl
import json
import math
import os
import sys
import time

from ansible_collections.oomguard.memory.plugins.module_utils import cgroups, procfs
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.files import FileError, atomic_write
from ansible_collections.oomguard.memory.plugins.module_utils.oom_log import facts, parse_lines, parse_stream
from ansible_collections.oomguard.memory.plugins.module_utils.processes import (
    compile_pattern, in_control_group, match_pattern, process_table, stream, which)

STATE_VERSION = 1
SOURCES = ('auto', 'kmsg', 'journal')
# Label sets beyond this many are added up under victim="other": a fleet of short-lived
# containers must not turn one counter into thousands of series.
DEFAULT_MAX_SERIES = 500
_TAIL = 65536


class MonitorError(OomguardError):
    """The collector cannot run at all (bad config, unwritable output); str() is the sentence."""


# ---- configuration -----------------------------------------------------------------------------

def load_config(path):
    """The collector's JSON configuration, checked; MonitorError with one sentence otherwise."""
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (IOError, OSError) as exc:
        raise MonitorError('cannot read the collector configuration %s: %s' % (path, exc.strerror))
    except ValueError as exc:
        raise MonitorError('the collector configuration %s is not valid JSON (%s); re-run the monitor role'
                           % (path, exc))
    return check_config(config, path)


def check_config(config, path='config'):
    if not isinstance(config, dict):
        raise MonitorError('%s: expected a JSON object' % path)
    for key in ('textfile', 'state'):
        value = config.get(key)
        if not isinstance(value, str) or not value.startswith('/'):
            raise MonitorError('%s: %s must be an absolute path, got %r' % (path, key, value))
    sources = config.setdefault('sources', ['auto'])
    if not isinstance(sources, list) or not sources:
        raise MonitorError('%s: sources must be a non-empty list' % path)
    for source in sources:
        if not isinstance(source, str) or not (source in SOURCES or source.startswith('/')):
            raise MonitorError('%s: source %r is not auto, kmsg, journal or an absolute file path' % (path, source))
        if source.endswith('.gz'):
            raise MonitorError('%s: source %s is compressed; name the live log file, not a rotated one'
                               % (path, source))
    for key in ('critical', 'cgroups'):
        items = config.setdefault(key, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) and i.get('name') for i in items):
            raise MonitorError('%s: %s must be a list of objects with a name' % (path, key))
    for item in config['critical']:
        if bool(item.get('unit')) == bool(item.get('process')):
            raise MonitorError('%s: critical item %r needs exactly one of unit or process' % (path, item['name']))
        if item.get('process'):
            try:
                compile_pattern(item['process'])
            except ValueError as exc:
                raise MonitorError('%s: critical item %r: %s' % (path, item['name'], exc))
    config.setdefault('root', '/')
    config.setdefault('max_series', DEFAULT_MAX_SERIES)
    config['mode'] = int(str(config.get('mode', '0644')), 8)
    return config


# ---- state -------------------------------------------------------------------------------------

def new_state():
    return {'version': STATE_VERSION, 'positions': {}, 'kills': [], 'last_kill': None, 'started': time.time()}


def load_state(path, problems):
    """The saved state, or a new one (a damaged file is reported, then replaced)."""
    try:
        with open(path) as handle:
            state = json.load(handle)
    except (IOError, OSError) as exc:
        if exc.errno != errno.ENOENT:
            problems.append('cannot read the state file %s (%s); counting starts again' % (path, exc.strerror))
        return new_state()
    except ValueError:
        problems.append('the state file %s was damaged; counting starts again' % path)
        return new_state()
    if not isinstance(state, dict) or state.get('version') != STATE_VERSION:
        problems.append('the state file %s has an unknown layout; counting starts again' % path)
        return new_state()
    for key, value in new_state().items():
        state.setdefault(key, value)
    return state


def _event_epoch(event):
    text = event.get('time')
    if not text:
        return None
    whole, _sep, frac = text.rstrip('Z').partition('.')
    try:
        epoch = calendar.timegm(time.strptime(whole, '%Y-%m-%dT%H:%M:%S'))
    except ValueError:
        return None
    return epoch + float('0.' + frac) if frac else float(epoch)


def count_kills(state, events, max_series=DEFAULT_MAX_SERIES, not_before=None):
    """Add the kill events to state['kills'] ([victim, memcg, oom_memcg, count]); return how many.

    Events without a victim (a header whose kill line was rate-limited away, "no killable
    process") kill nothing and are not counted. not_before (epoch) drops older events.
    """
    index = {(k[0], k[1], k[2]): k for k in state['kills']}
    added = 0
    for event in events:
        victim = event.get('victim')
        if not victim:
            continue
        epoch = _event_epoch(event)
        if not_before is not None and epoch is not None and epoch < not_before:
            continue
        key = (victim.get('name') or '', event.get('task_memcg') or '', event.get('oom_memcg') or '')
        entry = index.get(key)
        if entry is None:
            if len(index) >= max_series:
                key = ('other', '', '')
                entry = index.get(key)
            if entry is None:
                entry = [key[0], key[1], key[2], 0]
                index[key] = entry
                state['kills'].append(entry)
        entry[3] += 1
        added += 1
        if epoch is not None and (state['last_kill'] is None or epoch > state['last_kill']):
            state['last_kill'] = epoch
    return added


# ---- reading the kernel log incrementally -----------------------------------------------------

class _Bounded(object):
    """A binary stream cut at ``limit`` bytes: a line still being written is left for next time."""

    def __init__(self, raw, limit):
        self.raw = raw
        self.left = limit

    def read(self, size=-1):
        if self.left <= 0:
            return b''
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.raw.read(size)
        self.left -= len(data)
        return data


def _whole_lines_end(handle, size, start):
    """Offset just after the last newline in [start, size) of ``handle`` (start when none)."""
    at = size
    while at > start:
        back = max(start, at - _TAIL)
        handle.seek(back)
        data = handle.read(at - back)
        nl = data.rfind(b'\n')
        if nl >= 0:
            return back + nl + 1
        at = back
    return start


class _LogReader(object):
    """Reads the kernel log from where the previous run stopped; positions live in state."""

    def __init__(self, config, state, problems, boot_time, boot_id, popen=None):
        self.root = config['root']
        self.state = state
        self.problems = problems
        self.boot_time = boot_time
        self.boot_id = boot_id
        self.popen = popen or _popen
        self.positions = state['positions']

    def events(self, source):
        if source == 'auto':
            return self._auto()
        if source == 'kmsg':
            return self._kmsg()
        if source == 'journal':
            return self._journal()
        return self._file(source)

    def _auto(self):
        # The journal when it holds kernel messages (it also keeps what the ring buffer already
        # lost), else the kernel's ring buffer: what `dmesg` shows, readable on every Linux. Asked
        # once per boot: journald in a container, or with ReadKMsg=no, runs without them.
        choice = self.positions.get('auto') or {}
        if choice.get('boot_id') != self.boot_id:
            choice = {'boot_id': self.boot_id, 'source': 'journal' if self._journal_has_kernel() else 'kmsg'}
            self.positions['auto'] = choice
        if choice['source'] == 'journal':
            events = self._journal(quiet=True)
            if events is not None:
                return events
        return self._kmsg()

    def _journal_has_kernel(self):
        exe = _which('journalctl')
        if exe is None or not os.path.exists(procfs.path_in(self.root, '/run/systemd/journal/socket')):
            return False
        try:
            proc = self.popen([exe, '--no-pager', '-q', '-o', 'cat', '-n', '1', '_TRANSPORT=kernel'])
        except (IOError, OSError):
            return False
        try:
            found = any(line.strip() for line in proc.stdout)
        finally:
            rc = proc.wait()
        return found and rc in (0, None)

    def _kmsg(self):
        path = procfs.path_in(self.root, '/dev/kmsg')
        pos = self.positions.get('kmsg') or {}
        last = pos.get('seq', -1) if pos.get('boot_id') == self.boot_id else -1
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except (IOError, OSError) as exc:
            self.problems.append('cannot read %s: %s' % (path, exc.strerror))
            return None
        seen = [last]
        try:
            events = list(facts(parse_lines(_kmsg_records(fd, last, seen), boot_time=self.boot_time), 'kmsg'))
        finally:
            os.close(fd)
        self.positions['kmsg'] = {'boot_id': self.boot_id, 'seq': seen[0]}
        return events

    def _journal(self, quiet=False):
        exe = _which('journalctl')
        if exe is None:
            if not quiet:
                self.problems.append('cannot read the journal: journalctl was not found')
            return None
        pos = self.positions.get('journal') or {}
        argv = [exe, '--no-pager', '-q', '-o', 'json', '--show-cursor', '_TRANSPORT=kernel']
        if pos.get('cursor'):
            argv.append('--after-cursor=%s' % pos['cursor'])
        elif self.boot_time is not None:
            argv.append('--since=@%d' % self.boot_time)
        last = [None]
        try:
            proc = self.popen(argv)
        except (IOError, OSError) as exc:
            if not quiet:
                self.problems.append('cannot run journalctl: %s' % (exc.strerror or exc))
            return None
        try:
            events = list(facts(parse_lines(_cursor_lines(proc.stdout, last), boot_time=self.boot_time), 'journal'))
        finally:
            rc = proc.wait()
        if rc not in (0, None):
            if not quiet:
                self.problems.append('journalctl failed (rc=%s) reading kernel messages' % rc)
            return None
        if last[0]:
            self.positions['journal'] = {'cursor': last[0]}
        return events

    def _file(self, name):
        path = procfs.path_in(self.root, name)
        pos = self.positions.get(name) or {}
        events = []
        try:
            with open(path, 'rb', buffering=0) as handle:
                info = os.fstat(handle.fileno())
                start = pos.get('offset', 0)
                if pos.get('ino') != info.st_ino or info.st_size < start:
                    if pos.get('ino') is not None and pos.get('ino') != info.st_ino:
                        # rotated since the last run: finish the old file first when it is still there
                        events.extend(self._rotated(path, pos))
                    start = 0
                kwargs = {'year': time.localtime(info.st_mtime).tm_year, 'boot_time': self.boot_time,
                          'ref_time': info.st_mtime}
                end = _whole_lines_end(handle, info.st_size, start)
                handle.seek(start)
                events.extend(facts(parse_stream(_Bounded(handle, end - start), **kwargs), name))
        except (IOError, OSError) as exc:
            self.problems.append('cannot read %s: %s' % (path, exc.strerror or exc))
            return None
        self.positions[name] = {'ino': info.st_ino, 'offset': end}
        return events

    def _rotated(self, path, pos):
        old = path + '.1'
        try:
            with open(old, 'rb', buffering=0) as handle:
                info = os.fstat(handle.fileno())
                if info.st_ino != pos.get('ino') or info.st_size <= pos.get('offset', 0):
                    return []
                handle.seek(pos.get('offset', 0))
                return list(facts(parse_stream(handle, year=time.localtime(info.st_mtime).tm_year,
                                               boot_time=self.boot_time, ref_time=info.st_mtime), old))
        except (IOError, OSError):
            return []


def _kmsg_records(fd, last, seen):
    """Lines of the /dev/kmsg records after sequence number ``last``; seen[0] gets the newest."""
    while True:
        try:
            data = os.read(fd, 16384)
        except (IOError, OSError) as exc:
            if exc.errno == errno.EAGAIN:
                return
            if exc.errno == errno.EPIPE:
                continue  # overwritten while we read: the next read goes on with the oldest kept
            raise
        if not data:
            return
        head, _sep, _rest = data.partition(b';')
        fields = head.split(b',')
        try:
            seq = int(fields[1])
        except (IndexError, ValueError):
            continue
        if seq <= last:
            continue
        seen[0] = seq
        yield from data.rstrip(b'\n').split(b'\n')


def _cursor_lines(lines, last):
    """The journal's lines; last[0] gets the cursor --show-cursor prints at the end."""
    for line in lines:
        if line.startswith(b'-- cursor: '):
            last[0] = line[11:].strip().decode('ascii', 'replace')
            continue
        yield line


def _which(name):
    return which(name, fallback=('/usr/bin', '/bin'))


def _popen(argv):
    return stream(argv)


# ---- metric families ---------------------------------------------------------------------------

class Family(object):
    """One metric family: name, type, help text and its samples [(labels dict, value)]."""

    def __init__(self, name, kind, help_text):
        self.name = name
        self.kind = kind
        self.help = help_text
        self.samples = []

    def add(self, value, **labels):
        if value is not None:
            self.samples.append((labels, value))
        return self


def _escape_label(value):
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def _escape_help(text):
    return text.replace('\\', '\\\\').replace('\n', '\\n')


def _format_value(value):
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, int):
        return '%d' % value
    if math.isinf(value):
        return '+Inf' if value > 0 else '-Inf'
    if math.isnan(value):
        return 'NaN'
    if value == int(value) and abs(value) < 1e15:
        return '%d' % value
    return repr(float(value))


def render(families, comments=()):
    """The text exposition format: HELP and TYPE for every family, samples sorted, no timestamps.
    Families without samples are left out; comments come first, one line each."""
    out = []
    for comment in comments:
        out.append('# oomguard: %s' % ' '.join(str(comment).split()))
    for family in sorted(families, key=lambda f: f.name):
        if not family.samples:
            continue
        out.append('# HELP %s %s' % (family.name, _escape_help(family.help)))
        out.append('# TYPE %s %s' % (family.name, family.kind))
        rows = []
        for labels, value in family.samples:
            pairs = ','.join('%s="%s"' % (k, _escape_label(v)) for k, v in sorted(labels.items()) if v != '')
            rows.append('%s%s %s' % (family.name, '{%s}' % pairs if pairs else '', _format_value(value)))
        out.extend(sorted(rows))
    return '\n'.join(out) + '\n'


def kill_families(state):
    kills = Family('oomguard_oom_kills_total', 'counter',
                   'Processes killed by the kernel OOM killer since the collector started counting, by victim '
                   'name, the victim\'s memory cgroup (memcg) and the cgroup whose limit was hit (oom_memcg, '
                   'empty for a system-wide OOM).')
    for victim, memcg, oom_memcg, count in state['kills']:
        kills.add(count, victim=victim, memcg=memcg, oom_memcg=oom_memcg)
    last = Family('oomguard_oom_last_kill_timestamp_seconds', 'gauge',
                  'Unix time of the newest OOM kill counted (absent until one with a known time).')
    last.add(state.get('last_kill'))
    started = Family('oomguard_oom_counting_start_timestamp_seconds', 'gauge',
                     'Unix time at which the collector started counting OOM kills (its first run).')
    started.add(state.get('started'))
    return [kills, last, started]


def system_families(root, problems):
    """Swap, swappiness, PSI memory pressure and the kernel's own OOM kill counter."""
    families = []
    meminfo = procfs.read_meminfo(root)
    if 'SwapTotal' in meminfo:
        families.append(Family('oomguard_swap_size_bytes', 'gauge', 'Total swap space (all swap devices and files).')
                        .add(meminfo['SwapTotal'] * 1024))
        families.append(Family('oomguard_swap_used_bytes', 'gauge', 'Swap space in use.')
                        .add((meminfo['SwapTotal'] - meminfo.get('SwapFree', 0)) * 1024))
    swappiness = procfs.read_sysctl('vm.swappiness', root, warn=problems.append)
    if isinstance(swappiness, int):
        families.append(Family('oomguard_vm_swappiness', 'gauge', 'The vm.swappiness sysctl (0 to 200).')
                        .add(swappiness))
    pressure = procfs.read_pressure(root, 'memory')
    if pressure:
        ratio = Family('oomguard_memory_pressure_ratio', 'gauge',
                       'Share of wall time in which some or all (full) non-idle tasks stalled on memory, '
                       'averaged over the window (PSI avg10, avg60, avg300 as a ratio).')
        stalled = Family('oomguard_memory_pressure_stall_seconds_total', 'counter',
                         'Time in which some or all (full) non-idle tasks stalled on memory (PSI total).')
        for kind in ('some', 'full'):
            values = pressure.get(kind) or {}
            for window in ('10', '60', '300'):
                value = values.get('avg' + window)
                if value is not None:
                    ratio.add(value / 100.0, kind=kind, window=window + 's')
            if values.get('total') is not None:
                stalled.add(values['total'] / 1e6, kind=kind)
        families.extend([ratio, stalled])
    vmstat = procfs.read_vmstat(root, warn=problems.append) or {}
    if 'oom_kill' in vmstat:
        families.append(Family('oomguard_kernel_oom_kills_total', 'counter',
                               'OOM kills since boot as the kernel counts them (/proc/vmstat oom_kill).')
                        .add(vmstat['oom_kill']))
    return families


def unit_control_group(unit):
    """Where systemd puts a unit: slices by their dashed name, anything else in system.slice."""
    if unit.endswith('.slice'):
        if unit == '-.slice':
            return '/'
        parts = unit[:-len('.slice')].split('-')
        return '/' + '/'.join('-'.join(parts[:i + 1]) + '.slice' for i in range(len(parts)))
    return '/system.slice/' + unit


def critical_families(root, items, problems):
    """Per critical service: how many processes run, their highest oom_score_adj, protected or not."""
    procs = Family('oomguard_critical_service_processes', 'gauge',
                   'Main processes of a critical service (the oom_protect list): those whose parent is not '
                   'itself one of its processes.')
    adj = Family('oomguard_critical_service_oom_score_adj', 'gauge',
                 'Highest oom_score_adj among the main processes of a critical service (the least protected one).')
    protected = Family('oomguard_critical_service_protected', 'gauge',
                       '1 when every main process of a running critical service has a negative oom_score_adj, '
                       'else 0.')
    if not items:
        return [procs, adj, protected]
    table = process_table(root)
    for item in items:
        if item.get('unit'):
            pids = in_control_group(table, item.get('cgroup') or unit_control_group(item['unit']), root)
        else:
            pids = match_pattern(table, compile_pattern(item['process']), item.get('match') or 'comm', root)
        # A service's own processes, not the children it forks for its work (PostgreSQL backends,
        # sshd's per-login processes), which may rightly carry 0 or more to stay killable.
        chosen = set(pids)
        values = []
        for pid in [p for p in pids if table[p]['ppid'] not in chosen]:
            try:
                values.append(procfs.read_pid_oom_score_adj(pid, root))
            except procfs.ProcessGone:
                continue
        procs.add(len(values), service=item['name'])
        if values:
            adj.add(max(values), service=item['name'])
            protected.add(int(max(values) < 0), service=item['name'])
    return [procs, adj, protected]


def cgroup_families(root, items, problems):
    """Per watched unit or cgroup: memory.max, memory.high, usage and the cgroup's OOM counters."""
    fams = {
        'max': Family('oomguard_cgroup_memory_max_bytes', 'gauge',
                      'Hard memory limit of the cgroup (memory.max, v1 memory.limit_in_bytes); +Inf when unlimited.'),
        'high': Family('oomguard_cgroup_memory_high_bytes', 'gauge',
                       'Memory throttling limit of the cgroup (cgroup v2 memory.high); +Inf when unlimited.'),
        'usage': Family('oomguard_cgroup_memory_usage_bytes', 'gauge',
                        'Memory the cgroup uses now (memory.current, v1 memory.usage_in_bytes).'),
        'oom': Family('oomguard_cgroup_oom_total', 'counter',
                      'Times the cgroup hit its limit and the OOM killer was invoked (cgroup v2 memory.events oom).'),
        'oom_kill': Family('oomguard_cgroup_oom_kills_total', 'counter',
                           'Processes of the cgroup killed by the OOM killer (memory.events or memory.oom_control '
                           'oom_kill), where the kernel counts them.'),
    }
    if not items:
        return list(fams.values())
    layout = procfs.detect_cgroup_layout(root)
    top, version = layout.get('memory_root'), layout.get('memory_version')
    if not top:
        problems.append('no cgroup hierarchy has the memory controller; cgroup metrics are skipped')
        return list(fams.values())
    for item in items:
        path = item.get('cgroup') or unit_control_group(item['name'])
        directory = os.path.join(top, path.strip('/')) if path.strip('/') else top
        if not os.path.isdir(directory):
            continue
        labels = {'cgroup': '/' + path.strip('/'), 'unit': item.get('unit') or ''}
        try:
            limits = cgroups.read_limits(directory, version)
            usage = cgroups.read_usage(directory, version)
        except cgroups.CgroupError as exc:
            problems.append(str(exc))
            continue
        for name in ('max', 'high'):
            if name in limits and not (name == 'high' and version == 'v1'):
                value = limits[name]
                fams[name].add(float('inf') if value is None else value, **labels)
        fams['usage'].add(usage, **labels)
        counters_file = os.path.join(directory, 'memory.events' if version == 'v2' else 'memory.oom_control')
        try:
            with open(counters_file) as handle:
                counters = procfs.parse_memcg_oom_counters(handle.read())
        except (IOError, OSError):
            counters = {}
        fams['oom'].add(counters.get('oom'), **labels)
        fams['oom_kill'].add(counters.get('oom_kill'), **labels)
    return list(fams.values())


def collector_families(success, duration, now):
    return [
        Family('oomguard_collector_success', 'gauge',
               '1 when the last collector run read every source and file it was configured for, else 0 '
               '(the reasons are comments at the top of this file).').add(int(success)),
        Family('oomguard_collector_duration_seconds', 'gauge', 'Wall time of the last collector run.')
        .add(round(duration, 6)),
        Family('oomguard_collector_last_run_timestamp_seconds', 'gauge', 'Unix time of the last collector run.')
        .add(round(now, 3)),
    ]


# ---- one run -----------------------------------------------------------------------------------

def _boot():
    try:
        with open('/proc/sys/kernel/random/boot_id') as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def gather(config, state, problems, popen=None):
    """Every family for this run; updates state (positions and counters) in place."""
    root = config['root']
    families = []
    try:
        boot_time = procfs.read_boot_time(root)
    except procfs.ProcError as exc:
        problems.append(str(exc))
        boot_time = None
    first_run = not state['positions']
    reader = _LogReader(config, state, problems, boot_time, _boot() if root == '/' else 'fake', popen)
    for source in config['sources']:
        try:
            events = reader.events(source)
        except Exception as exc:  # pylint: disable=broad-except
            # a log line the parser chokes on must not stop the timer; say so in the file instead
            problems.append('reading %s failed: %s: %s' % (source, type(exc).__name__, exc))
            continue
        if events:
            count_kills(state, events, config['max_series'], not_before=boot_time if first_run else None)
    families.extend(kill_families(state))
    for part in (system_families, critical_families, cgroup_families):
        try:
            if part is system_families:
                families.extend(part(root, problems))
            else:
                families.extend(part(root, config['critical' if part is critical_families else 'cgroups'], problems))
        except Exception as exc:  # pylint: disable=broad-except
            problems.append('%s failed: %s: %s' % (part.__name__, type(exc).__name__, exc))
    return families


def _lock(state_path):
    """An exclusive lock next to the state file; None when another run holds it."""
    fd = os.open(state_path + '.lock', os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (IOError, OSError):
        os.close(fd)
        return None
    return fd


def run(config, popen=None, now=None):
    """One collector run: read, count, write the textfile and the state. Returns (rc, problems).

    rc is 0 whenever the textfile was written (parts that failed are in the file), 1 when the
    file or the state could not be written, and 0 without doing anything when another run is
    still busy.
    """
    started = time.monotonic()
    state_dir = os.path.dirname(config['state'])
    try:
        if not os.path.isdir(state_dir):
            os.makedirs(state_dir, 0o700)
        fd = _lock(config['state'])
    except (IOError, OSError) as exc:
        return 1, ['cannot use the state directory %s: %s' % (state_dir, exc.strerror)]
    if fd is None:
        return 0, ['another collector run is still busy; this one skipped']
    try:
        problems = []
        state = load_state(config['state'], problems)
        families = gather(config, state, problems, popen)
        end = time.time() if now is None else now
        families.extend(collector_families(not problems, time.monotonic() - started, end))
        text = render(families, problems)
        try:
            atomic_write(config['state'], json.dumps(state, sort_keys=True), mode=0o600)
            atomic_write(config['textfile'], text, mode=config['mode'])
        except FileError as exc:
            return 1, problems + [str(exc)]
        return 0, problems
    finally:
        os.close(fd)


def main(argv=None):
    """Command line: oomguard-collector --config PATH. Problems go to stderr, one line each."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != '--config':
        sys.stderr.write('usage: oomguard-collector --config /etc/oomguard-monitor.json\n')
        return 2
    try:
        config = load_config(argv[1])
    except MonitorError as exc:
        sys.stderr.write('oomguard-collector: %s\n' % exc)
        return 1
    rc, problems = run(config)
    for problem in problems:
        sys.stderr.write('oomguard-collector: %s\n' % problem)
    return rc
