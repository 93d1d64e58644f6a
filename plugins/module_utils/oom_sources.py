# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where kernel OOM reports are read from: /dev/kmsg, dmesg, the journal and log files.

Private to the oomguard.memory collection: no compatibility promise to other code.

``collect_events`` reads every source the user named (streaming, one chunk or line at a time),
runs ``oom_log`` over it, drops events older than ``since``, merges the copies of one event seen
in several sources and returns the events oldest first with a summary.  ``parse_since`` turns
the module's ``since`` option into a datetime.  All paths are taken under ``root`` so tests can
point the reader at a fake tree.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import calendar
import datetime
import errno
import glob
import gzip
import json
import os
import re
import subprocess
import time

from ansible_collections.oomguard.memory.plugins.module_utils import procfs
from ansible_collections.oomguard.memory.plugins.module_utils.oom_log import parse_lines, parse_stream

KEYWORDS = ('auto', 'kmsg', 'dmesg', 'journal')
SYSLOG_FILES = ('var/log/kern.log', 'var/log/syslog', 'var/log/messages')
# Two copies of one event (kern.log and syslog, or kmsg and the journal) are at most this far apart.
DEDUP_SECONDS = 5.0
# Files smaller than this are read by one process: forking would cost more than it saves.
PARALLEL_MIN_BYTES = 64 << 20
MAX_WORKERS = 4
_UTC = datetime.timezone.utc if hasattr(datetime, 'timezone') else None
_AGE_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hour|hours|d|day|days|w|week|weeks)\s*$')
_AGE_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}
_ISO_RE = re.compile(r'^\s*(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?)?\s*(Z|[+-]\d\d:?\d\d)?\s*$')
_ROTATED_RE = re.compile(r'^(?:\.\d+(?:\.gz)?|-\d{8}(?:\.gz)?)$')


class OomSourceError(Exception):
    """A source the user named alone cannot be read; str() is the sentence to show."""


def parse_since(text, now=None, boot_time=None):
    """Turn the `since` option into a tz-aware UTC datetime (None for no bound).

    Accepts 'boot', an ISO-8601 date or time ('2024-09-10', '2024-09-10T12:00:00+02:00'; without
    an offset it is UTC), or an age: a number and s/m/h/d/w ('30m', '24h', '7d').
    now and boot_time are epoch seconds (now defaults to the current time).
    Raises ValueError with a sentence for the user on anything else.
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, datetime.datetime):
        return text if text.tzinfo else text.replace(tzinfo=_UTC)
    value = str(text).strip()
    if now is None:
        now = time.time()
    if value.lower() == 'boot':
        if boot_time is None:
            raise ValueError("since: boot needs the boot time, but btime was not found in /proc/stat; "
                             "give an ISO-8601 time or an age such as 24h instead")
        return datetime.datetime.fromtimestamp(boot_time, _UTC)
    m = _AGE_RE.match(value.lower())
    if m:
        seconds = float(m.group(1)) * _AGE_UNITS[m.group(2)[0]]
        return datetime.datetime.fromtimestamp(now - seconds, _UTC)
    m = _ISO_RE.match(value)
    if m:
        try:
            epoch = calendar.timegm((int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4) or 0),
                                     int(m.group(5) or 0), int(m.group(6) or 0), 0, 0, 0))
            datetime.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4) or 0),
                              int(m.group(5) or 0), int(m.group(6) or 0))
        except ValueError:
            m = None
        else:
            if m.group(7):
                epoch += float(m.group(7))
            tz = m.group(8)
            if tz and tz != 'Z':
                digits = tz[1:].replace(':', '')
                offset = int(digits[:2]) * 3600 + int(digits[2:4]) * 60
                epoch -= offset if tz[0] == '+' else -offset
            return datetime.datetime.fromtimestamp(epoch, _UTC)
    raise ValueError("since: %r is not 'boot', an ISO-8601 time (2024-09-10T12:00:00Z) or an age "
                     "(a number and s, m, h, d or w, such as 30m or 7d)" % (value,))


def collect_events(sources, run_command, warn, since=None, details=(), root='/', boot_time=None, now=None,
                   popen=None, max_events=None):
    """Read all sources and return the list of events, oldest first.

    sources: list of 'auto' | 'kmsg' | 'dmesg' | 'journal' | file path | glob (plain or .gz).
    run_command(argv) -> (rc, stdout, stderr): used for `dmesg` and to ask whether the journal
      holds kernel messages (the module passes AnsibleModule.run_command with LC_ALL=C).
    warn(msg): called for sources that cannot be read.  When the user named a single source
      (not 'auto') and it cannot be read, OomSourceError is raised instead.
    since: None or a tz-aware datetime; events before it, and events whose time is unknown, are
      dropped.
    popen(argv) -> object with .stdout (iterable of lines) and .wait(): streams `journalctl`;
      None means subprocess.Popen with LC_ALL=C.
    max_events: None (all) or keep only the newest this many.

    Events without a time come first, in reading order, then the timed ones by time.  A copy of an
    event seen in another source is merged into the first one read (fields it lacked are filled
    in).  ``summarize(events)`` gives the `summary` fact.
    """
    if boot_time is None:
        try:
            boot_time = procfs.read_boot_time(root)
        except procfs.ProcError:
            boot_time = None  # uptimes then stay uptimes: events keep time null
    since_epoch = None
    if since is not None:
        since_epoch = calendar.timegm(since.utctimetuple()) + since.microsecond / 1000000.0
    strict = len(sources) == 1 and sources[0] != 'auto'
    reader = _Reader(run_command, warn, details, root, boot_time, popen, strict, since_epoch)
    for item in sources:
        reader.read(item)
    events = reader.result()
    if max_events is not None and len(events) > max_events:
        events = events[len(events) - max_events:] if max_events > 0 else []
    return events


def summarize(events):
    """The `summary` fact for a list of events (oldest first)."""
    by_victim = {}
    by_memcg = {}
    kills = 0
    times = [e['time'] for e in events if e['time']]
    for event in events:
        victim = event['victim']
        if victim:
            kills += 1
            name = victim.get('name') or '?'
            by_victim[name] = by_victim.get(name, 0) + 1
        if event['oom_memcg']:
            by_memcg[event['oom_memcg']] = by_memcg.get(event['oom_memcg'], 0) + 1
    return {'events': len(events), 'kills': kills, 'first': min(times) if times else None,
            'last': max(times) if times else None, 'by_victim': by_victim, 'by_memcg': by_memcg}


def _event_epoch(event):
    text = event['time']
    if not text:
        return None
    whole, _sep, frac = text.rstrip('Z').partition('.')
    epoch = calendar.timegm(time.strptime(whole, '%Y-%m-%dT%H:%M:%S'))
    return epoch + float('0.' + frac) if frac else float(epoch)


def _which(name):
    for folder in os.environ.get('PATH', '').split(os.pathsep) + ['/usr/bin', '/bin', '/usr/sbin', '/sbin']:
        path = os.path.join(folder, name)
        if folder and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _default_popen(argv):
    # run_command would hold the whole journal (gigabytes on a busy host) in memory; a pipe streams it
    env = dict(os.environ, LC_ALL='C')
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)  # pylint: disable=ansible-bad-function


class _Reader(object):
    """Reads sources one after another and keeps the (deduplicated) events."""

    def __init__(self, run_command, warn, details, root, boot_time, popen, strict, since_epoch):
        self.run_command = run_command
        self.warn = warn
        self.details = details
        self.root = root
        self.boot_time = boot_time
        self.popen = popen or _default_popen
        self.strict = strict
        self.since_epoch = since_epoch
        self.events = []
        self.read_ok = set()

    def _path(self, path):
        if self.root in ('/', '', None):
            return path
        return os.path.join(self.root, path.lstrip('/'))

    def _fail(self, msg):
        if self.strict:
            raise OomSourceError(msg)
        self.warn(msg)

    # --- sources ----------------------------------------------------------------------------

    def read(self, item):
        if item == 'auto':
            self._auto()
        elif item == 'kmsg':
            self._kmsg()
        elif item == 'dmesg':
            self._dmesg()
        elif item == 'journal':
            self._journal()
        else:
            self._files(item)

    def _auto(self):
        if not (self._journal_has_kernel() and self._journal(quiet=True)):
            if not self._kmsg(quiet=True):
                self._dmesg()
        for name in SYSLOG_FILES:
            base = self._path('/' + name)
            found = [base] if os.path.isfile(base) else []
            folder, stem = os.path.split(base)
            try:
                siblings = os.listdir(folder)
            except OSError:
                siblings = []
            found.extend(os.path.join(folder, s) for s in sorted(siblings)
                         if s.startswith(stem) and _ROTATED_RE.match(s[len(stem):]))
            for path in found:
                self._file(path, path)

    def _journal_has_kernel(self):
        if not _which('journalctl'):
            return False
        try:
            rc, out, _err = self.run_command(['journalctl', '-k', '-b', '-n', '1', '-q', '--no-pager'])
        except (OSError, IOError):
            return False
        return rc == 0 and bool(out.strip())

    def _kmsg(self, quiet=False):
        path = self._path('/dev/kmsg')
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except (OSError, IOError) as e:
            if not quiet:
                self._fail('cannot read the kernel log %s: %s' % (path, e.strerror or e))
            return False
        try:
            self._add(parse_lines(_kmsg_lines(fd), 'kmsg', self.details, boot_time=self.boot_time))
        finally:
            os.close(fd)
        return True

    def _dmesg(self):
        if not _which('dmesg'):
            self._fail('cannot run dmesg: the command was not found; use sources: [kmsg] instead')
            return False
        rc, out, err = self.run_command(['dmesg'])
        if rc != 0:
            self._fail('dmesg failed (rc=%s): %s' % (rc, (err or out or '').strip()[:200]))
            return False
        self._add(parse_lines(out.splitlines(), 'dmesg', self.details, boot_time=self.boot_time))
        return True

    def _journal(self, quiet=False):
        if not _which('journalctl'):
            if not quiet:
                self._fail('cannot read the journal: journalctl was not found')
            return False
        argv = ['journalctl', '--no-pager', '-q', '-o', 'json', '_TRANSPORT=kernel']
        if self.since_epoch is not None:
            # a report can start a little before its kill line
            argv.extend(['--since', '@%d' % int(self.since_epoch - 60)])
        proc = self.popen(argv)
        try:
            self._add(parse_lines(proc.stdout, 'journal', self.details, boot_time=self.boot_time))
        finally:
            rc = proc.wait()
        if rc not in (0, None):
            if not quiet:
                self._fail('journalctl failed (rc=%s) reading kernel messages' % rc)
            return False
        return True

    def _files(self, pattern):
        path = self._path(pattern)
        if glob.has_magic(path):
            matches = sorted(p for p in glob.glob(path) if os.path.isfile(p))
            if not matches:
                self._fail('no file matches %s' % path)
            for match in matches:
                self._file(match, match)
        else:
            self._file(path, pattern)

    def _file(self, path, label):
        try:
            st = os.stat(path)
            kwargs = dict(details=self.details, year=time.localtime(st.st_mtime).tm_year, boot_time=self.boot_time,
                          ref_time=st.st_mtime)
            if path.endswith('.gz'):
                with gzip.open(path, 'rb') as stream:
                    self._add(parse_stream(stream, label, **kwargs))
            else:
                self._add(parse_file(path, label, st.st_size, kwargs))
        except (IOError, OSError, EOFError) as e:
            reason = getattr(e, 'strerror', None) or str(e)
            self._fail('cannot read %s: %s' % (path, reason))
            return False
        return True

    # --- merging ----------------------------------------------------------------------------

    def _add(self, events):
        for event in events:
            epoch = _event_epoch(event)
            if self.since_epoch is not None and (epoch is None or epoch < self.since_epoch):
                continue
            self.events.append((epoch, event))

    def result(self):
        timed = sorted((e for e in self.events if e[0] is not None), key=lambda e: e[0])
        untimed = [e for e in self.events if e[0] is None]
        kept = []
        recent = {}
        for epoch, event in untimed + timed:
            keys = _dedup_keys(event)
            twin = None
            for key in keys:
                seen = recent.get(key)
                if seen is not None and _close(seen[0], epoch, seen[1], event):
                    twin = seen[1]
                    break
            if twin is not None:
                _merge(twin, event)
                continue
            kept.append(event)
            for key in keys:
                recent[key] = (epoch, event)
        return kept


def _workers():
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def parse_file(path, label, size, kwargs, workers=None):
    """Events of one plain log file, in file order.

    A large file is cut into one segment per CPU at line starts; forked workers parse the later
    segments while this process parses the first, so a big log costs about what one grep costs.
    A report that crosses a cut is finished by the segment it started in, and the next segment
    drops its own copy of it (the events that start on lines the previous segment already read).
    """
    if workers is None:
        workers = _workers()
    if workers < 2 or size < PARALLEL_MIN_BYTES or not hasattr(os, 'fork'):
        with open(path, 'rb', buffering=0) as stream:
            yield from parse_stream(stream, label, **kwargs)
        return
    bounds = [0]
    with open(path, 'rb', buffering=0) as stream:
        for k in range(1, workers):
            # Split after the whole line holding the k-th share, but never between a
            # "Kill process ... score" line and the kill line it announces.
            at = size * k // workers
            back = max(0, at - 4096)
            stream.seek(back)
            stream.seek(back + stream.read(at - back).rfind(b'\n') + 1)
            line = stream.readline()
            while line and b'ill process' in line:
                line = stream.readline()
            bounds.append(max(bounds[-1], min(stream.tell(), size)))
    bounds.append(None)
    children = []
    try:
        for k in range(1, workers):
            children.append(_fork_segment(path, label, kwargs, bounds[k], bounds[k + 1]))
        results = [_segment(path, label, kwargs, bounds[0], bounds[1])]
        for child in children:
            results.append(_collect(child, path))
        children = []
    finally:
        for pid, fd in children:
            os.close(fd)
            os.waitpid(pid, 0)
    base = consumed = 0
    for k, result in enumerate(results):
        for event in result['events']:
            line = base + int(event['source'].rpartition(':')[2])
            if k and line <= consumed:
                continue
            event['source'] = '%s:%d' % (label, line)
            yield event
        consumed = max(consumed, base + result['lines'])
        base += result['lines_at_end']


def _segment(path, label, kwargs, start, end):
    stats = {}
    with open(path, 'rb', buffering=0) as stream:
        stream.seek(start)
        events = list(parse_stream(stream, label, end=None if end is None else end - start, stats=stats, **kwargs))
    return {'events': events, 'lines': stats['lines'], 'lines_at_end': stats['lines_at_end']}


def _fork_segment(path, label, kwargs, start, end):
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_fd)
            payload = json.dumps(_segment(path, label, kwargs, start, end)).encode('utf-8')
            with os.fdopen(write_fd, 'wb') as out:
                out.write(payload)
            status = 0
        finally:
            # never run the parent's exit handlers (or Ansible's) in the worker
            os._exit(status)
    os.close(write_fd)
    return pid, read_fd


def _collect(child, path):
    pid, fd = child
    with os.fdopen(fd, 'rb') as inp:
        payload = inp.read()
    _pid, status = os.waitpid(pid, 0)
    if status != 0 or not payload:
        raise OSError(errno.EIO, 'a worker reading %s failed' % path)
    return json.loads(payload.decode('utf-8'))


def _dedup_keys(event):
    keys = []
    victim = event['victim']
    trigger = event['trigger']
    if victim and victim.get('pid') is not None:
        keys.append(('victim', victim['pid'], victim.get('name')))
    if trigger and trigger.get('pid') is not None:
        keys.append(('trigger', trigger['pid']))
    return keys


def _close(epoch_a, epoch_b, event_a, event_b):
    if event_a['source'].rpartition(':')[0] == event_b['source'].rpartition(':')[0]:
        return False
    if epoch_a is not None and epoch_b is not None:
        return abs(epoch_a - epoch_b) <= DEDUP_SECONDS
    # without both times, the kernel's own stamp of the same record is the proof
    up_a, up_b = event_a['uptime'], event_b['uptime']
    return up_a is not None and up_b is not None and abs(up_a - up_b) < 0.001


def _merge(kept, other):
    for key, value in other.items():
        current = kept.get(key)
        if current in (None, False, [], {}) and value not in (None, False, [], {}):
            kept[key] = value
        elif isinstance(current, dict) and isinstance(value, dict) and key in ('victim', 'trigger'):
            for sub, sub_value in value.items():
                if current.get(sub) is None and sub_value is not None:
                    current[sub] = sub_value


def _kmsg_lines(fd):
    """Lines of /dev/kmsg (or a copy of it) read without blocking, until the buffer is drained."""
    carry = b''
    while True:
        try:
            data = os.read(fd, 65536)
        except (OSError, IOError) as e:
            if e.errno == errno.EAGAIN:
                break
            if e.errno == errno.EPIPE:
                # the record we were about to read was overwritten; the next read goes on
                continue
            raise
        if not data:
            break
        data = carry + data
        lines = data.split(b'\n')
        carry = lines.pop()
        yield from lines
    if carry:
        yield carry
