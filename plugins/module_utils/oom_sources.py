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

import bz2
import datetime
import errno
import glob
import gzip
import json
import lzma
import math
import os
import re
import stat
import subprocess
import time
import zlib

from ansible_collections.oomguard.memory.plugins.module_utils import procfs
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.oom_log import (
    format_event, parse_stream, to_epoch)
from ansible_collections.oomguard.memory.plugins.module_utils.processes import stream, which, widen_pipe

KEYWORDS = ('auto', 'kmsg', 'dmesg', 'journal')
SYSLOG_FILES = ('var/log/kern.log', 'var/log/syslog', 'var/log/messages')
# Two copies of one event (kern.log and syslog, or kmsg and the journal) are at most this far apart.
DEDUP_SECONDS = 5.0
# Files smaller than this are read by one process: forking would cost more than it saves.
PARALLEL_MIN_BYTES = 64 << 20
MAX_WORKERS = 4
_UTC = datetime.timezone.utc
_AGE_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hour|hours|d|day|days|w|week|weeks)\s*$')
_AGE_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}
_ISO_RE = re.compile(r'^\s*(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?)?\s*(Z|[+-]\d\d:?\d\d)?\s*$')
_ROTATED_RE = re.compile(r'^(?:\.\d+(?:\.(?:gz|xz|bz2|zst))?|-\d{8}(?:\.(?:gz|xz|bz2|zst))?)$')
# datetime's calendar: years 1 to 9999
_FIRST_EPOCH = -62135596800.0
_LAST_EPOCH = 253402300799.0
# Errors a damaged compressed file raises while it is read (gzip.BadGzipFile is an OSError).
_DAMAGE = (EOFError, zlib.error, lzma.LZMAError, ValueError)
_READ_ERRORS = (IOError, OSError) + _DAMAGE
_BOOT_RE = re.compile(r'\b[0-9a-f]{32}\b')
_FORMATS = {'.gz': 'gzip', '.xz': 'xz', '.bz2': 'bzip2', '.zst': 'zstd'}


class OomSourceError(OomguardError):
    """A source the user named alone cannot be read; str() is the sentence to show."""


def parse_since(text, now=None, boot_time=None):
    """Turn the `since` option into a tz-aware UTC datetime (None for no bound).

    Accepts 'boot', an ISO-8601 date or time ('2024-09-10', '2024-09-10T12:00:00+02:00'; without
    an offset it is UTC), or an age: a number and s/m/h/d/w ('30m', '24h', '7d').
    now and boot_time are epoch seconds (now defaults to the current time).
    Raises ValueError with a sentence for the user, naming `since`, on anything else.
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, datetime.datetime):
        return text if text.tzinfo else text.replace(tzinfo=_UTC)
    value = str(text).strip()
    epoch = _since_epoch(value, time.time() if now is None else now, boot_time)
    if not _FIRST_EPOCH <= epoch <= _LAST_EPOCH:
        raise ValueError('since: %r falls outside the calendar (years 1 to 9999 in UTC); give a time '
                         'such as 2024-09-10T12:00:00Z or an age such as 7d' % (value,))
    return datetime.datetime(1970, 1, 1, tzinfo=_UTC) + datetime.timedelta(seconds=epoch)


def _since_epoch(value, now, boot_time):
    if value.lower() == 'boot':
        if boot_time is None:
            raise ValueError("since: boot needs the boot time, but btime was not found in /proc/stat; "
                             "give an ISO-8601 time or an age such as 24h instead")
        return float(boot_time)
    m = _AGE_RE.match(value.lower())
    if m:
        seconds = float(m.group(1)) * _AGE_UNITS[m.group(2)[0]]
        if math.isinf(seconds):
            raise ValueError('since: %r is too large an age' % (value,))
        return now - seconds
    m = _ISO_RE.match(value)
    if m:
        try:
            epoch = to_epoch(m.group(1), m.group(2), m.group(3), m.group(4) or 0, m.group(5) or 0, m.group(6) or 0,
                             tz=m.group(8))
            datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            pass
        else:
            return epoch + (float(m.group(7)) if m.group(7) else 0.0)
    raise ValueError("since: %r is not 'boot', an ISO-8601 time (2024-09-10T12:00:00Z) or an age "
                     "(a number and s, m, h, d or w, such as 30m or 7d)" % (value,))


def _epoch_of(since):
    """Epoch seconds of a `since` bound given as a datetime or a number (None: no bound)."""
    if since is None:
        return None
    if isinstance(since, datetime.datetime):
        since = since if since.tzinfo else since.replace(tzinfo=_UTC)
        return (since - datetime.datetime(1970, 1, 1, tzinfo=_UTC)).total_seconds()
    return float(since)


def collect(sources, run_command, warn, since=None, details=(), root='/', boot_time=None, popen=None):
    """Read all sources; return (event values oldest first, sources_read).

    The event values are those of ``oom_log`` plus 'label' (the source they were read from);
    ``oom_log.format_event(value)`` makes the documented fact of one.  ``sources_read`` is one
    dict per source looked at: {source, status: read|skipped, reason, events}.
    See ``collect_events`` for the arguments.
    """
    for number, item in enumerate(sources, 1):
        if not isinstance(item, str) or not item.strip():
            raise OomSourceError('sources item %d is empty; name a file, a glob or one of %s'
                                 % (number, ', '.join(KEYWORDS)))
        if '\x00' in item:
            raise OomSourceError('sources item %d (%r) holds a NUL byte, which no path can contain' % (number, item))
    if boot_time is None:
        try:
            boot_time = procfs.read_boot_time(root)
        except procfs.ProcError:
            boot_time = None  # uptimes then stay uptimes: events keep time null
    strict = len(sources) == 1 and sources[0] != 'auto'
    reader = _Reader(run_command, warn, details, root, boot_time, popen, strict, _epoch_of(since))
    for item in sources:
        reader.read(item)
    return reader.result(), reader.sources_read


def collect_events(sources, run_command, warn, since=None, details=(), root='/', boot_time=None, popen=None,
                   max_events=None):
    """The stable entry point: read all sources and return the event facts, oldest first.

    sources: list of 'auto' | 'kmsg' | 'dmesg' | 'journal' | file path | glob (plain, .gz, .xz,
      .bz2, or .zst where the zstd command exists).
    run_command(argv) -> (rc, stdout, stderr): used for `dmesg` and to ask whether the journal
      holds kernel messages (the module passes AnsibleModule.run_command with LC_ALL=C).
    warn(msg): called for sources that cannot be read.  When the user named a single source
      (not 'auto') and it cannot be read, OomSourceError is raised instead.
    since: None, a datetime (naive is UTC) or epoch seconds; events before it, and events whose
      time is unknown, are dropped.
    popen(argv) -> object with .stdout (binary file) and .wait(): streams `journalctl`;
      None means subprocess.Popen with LC_ALL=C.
    max_events: None (all) or keep only the newest this many.

    Events without a time come first, in reading order, then the timed ones by time.  A copy of an
    event seen in another source is merged into the first one read (fields it lacked are filled
    in).  Each event is the documented `events` fact; ``summarize(events)`` gives `summary`.
    """
    events, _read = collect(sources, run_command, warn, since, details, root, boot_time, popen)
    if max_events is not None:
        events = events[len(events) - max_events:] if 0 < max_events < len(events) else events if max_events else []
    return [format_event(event) for event in events]


def summarize(events):
    """The `summary` fact for a list of event facts (oldest first)."""
    by_victim = {}
    by_memcg = {}
    kills = 0
    times = [e['time'] for e in events if e['time']]
    for event in events:
        for victim in event.get('victims') or ([event['victim']] if event['victim'] else []):
            kills += 1
            name = victim.get('name') or '?'
            by_victim[name] = by_victim.get(name, 0) + 1
        if event['oom_memcg']:
            by_memcg[event['oom_memcg']] = by_memcg.get(event['oom_memcg'], 0) + 1
    return {'events': len(events), 'kills': kills, 'first': min(times) if times else None,
            'last': max(times) if times else None, 'by_victim': by_victim, 'by_memcg': by_memcg}


def _which(name):
    return which(name)


def _default_popen(argv):
    return stream(argv)


def _reason(exc):
    """missing / permission / the system's words, for sources_read and warnings."""
    code = getattr(exc, 'errno', None)
    if code in (errno.ENOENT, errno.ENOTDIR):
        return 'missing'
    if code in (errno.EACCES, errno.EPERM):
        return 'permission'
    return getattr(exc, 'strerror', None) or 'unreadable'


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
        self.sources_read = []

    def _path(self, path):
        return procfs.path_in(self.root, path) if os.path.isabs(path) else path

    def _done(self, source, count=None, reason=None, msg=None, strict=None):
        """Record how a source went; a skipped one warns, or fails when it was the only source."""
        if reason is None:
            self.sources_read.append({'source': source, 'status': 'read', 'reason': None, 'events': count})
            return True
        self.sources_read.append({'source': source, 'status': 'skipped', 'reason': reason, 'events': 0})
        if msg:
            if self.strict if strict is None else strict:
                raise OomSourceError(msg)
            self.warn(msg)
        return False

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
            folder, stem = os.path.split(base)
            try:
                siblings = sorted(os.listdir(folder))
            except OSError:
                siblings = []
            if stem not in siblings:
                self._done(base, reason='missing')
            found = [os.path.join(folder, s) for s in siblings
                     if s == stem or (s.startswith(stem) and _ROTATED_RE.match(s[len(stem):]))]
            for path in found:
                self._file(path, strict=False)

    def _journal_has_kernel(self):
        if not _which('journalctl'):
            self._done('journal', reason='missing')
            return False
        try:
            rc, out, _err = self.run_command(['journalctl', '-k', '-b', '-n', '1', '-q', '--no-pager'])
        except (OSError, IOError):
            rc, out = 1, ''
        if rc == 0 and out.strip():
            return True
        self._done('journal', reason='empty' if rc == 0 else 'unreadable')
        return False

    def _kmsg(self, quiet=False):
        path = procfs.path_in(self.root, '/dev/kmsg')
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except (OSError, IOError) as e:
            return self._done('kmsg', reason=_reason(e),
                              msg=None if quiet else 'cannot read the kernel log %s: %s' % (path, e.strerror or e))
        try:
            count = self._add(parse_stream(_KmsgStream(fd), self.details, boot_time=self.boot_time), 'kmsg')
        finally:
            os.close(fd)
        return self._done('kmsg', count)

    def _dmesg(self):
        if not _which('dmesg'):
            return self._done('dmesg', reason='missing',
                              msg='cannot run dmesg: the command was not found; use sources: [kmsg] instead')
        rc, out, err = self.run_command(['dmesg'])
        if rc != 0:
            text = (err or out or '').strip()[:200]
            return self._done('dmesg', reason='permission' if 'not permitted' in text else 'unreadable',
                              msg='dmesg failed (rc=%s): %s' % (rc, text))
        data = out.encode('utf-8', 'replace') if isinstance(out, str) else out
        count = self._add(parse_stream(_BytesStream(data), self.details, boot_time=self.boot_time), 'dmesg')
        return self._done('dmesg', count)

    def _journal(self, quiet=False):
        """Kernel messages of every boot the journal keeps (journalctl -k alone is this boot only).

        One `journalctl -o short-unix` per boot, so each event knows its boot; -o json, the same
        text at a fifth of the speed, only where journalctl is too old for short-unix.
        """
        if not _which('journalctl'):
            return self._done('journal', reason='missing',
                              msg=None if quiet else 'cannot read the journal: journalctl was not found')
        since = []
        if self.since_epoch is not None:
            # a report can start a little before its kill line
            since = ['--since', '@%d' % int(max(0, self.since_epoch - 60))]
        count = 0
        for boot in self._journal_boots() or [None]:
            argv = ['journalctl', '--no-pager', '-q', '-a', '-o', 'short-unix'] + (['-b', boot] if boot else [])
            rc, found = self._journal_run(argv + since + ['_TRANSPORT=kernel'], boot)
            if rc not in (0, None):
                rc, found = self._journal_run(['journalctl', '--no-pager', '-q', '-o', 'json'] + since +
                                              ['_TRANSPORT=kernel'], None)
                count = found
                break
            count += found
        if rc not in (0, None):
            return self._done('journal', reason='unreadable',
                              msg=None if quiet else 'journalctl failed (rc=%s) reading kernel messages' % rc)
        return self._done('journal', count)

    def _journal_boots(self):
        """The boot IDs the journal keeps, oldest first (empty when journalctl cannot list them)."""
        try:
            rc, out, _err = self.run_command(['journalctl', '--no-pager', '-q', '--list-boots'])
        except (OSError, IOError):
            return []
        if rc != 0:
            return []
        boots = []
        for line in out.splitlines():
            m = _BOOT_RE.search(line)
            if m and m.group(0) not in boots:
                boots.append(m.group(0))
        return boots

    def _journal_run(self, argv, boot):
        proc = self.popen(argv)
        widen_pipe(proc.stdout)
        try:
            found = self._add(parse_stream(proc.stdout, self.details, boot_time=self.boot_time), 'journal', boot)
        finally:
            rc = proc.wait()
        return rc, found

    def _files(self, pattern):
        path = self._path(pattern)
        if glob.has_magic(path):
            matches = sorted(glob.glob(path))
            if not matches:
                self._done(path, reason='missing', msg='no file matches %s' % path)
            for match in matches:
                self._file(match, strict=False)
        else:
            self._file(path, label=pattern)

    def _file(self, path, strict=None, label=None):
        """One log file (plain or compressed); anything but a regular file is refused, never opened."""
        try:
            st = os.stat(path)
        except (IOError, OSError) as e:
            return self._done(path, reason=_reason(e), msg='cannot read %s: %s' % (path, e.strerror or e), strict=strict)
        if not stat.S_ISREG(st.st_mode):
            hint = '; for the kernel ring buffer use the keyword kmsg' if path.rstrip('/').endswith('/dev/kmsg') else ''
            return self._done(path, reason='not a regular file', strict=strict,
                              msg='cannot read %s: it is not a regular file (a device, FIFO, socket or '
                                  'directory), and only log files are read%s' % (path, hint))
        if st.st_size == 0:
            return self._done(path, 0, reason='empty')
        kwargs = dict(details=self.details, year=time.localtime(st.st_mtime).tm_year, boot_time=self.boot_time,
                      ref_time=st.st_mtime)
        fmt = _FORMATS.get(os.path.splitext(path)[1])
        try:
            if fmt is None:
                count = self._add(parse_file(path, st.st_size, kwargs), label or path)
            else:
                with _open_compressed(path, fmt) as stream:
                    count = self._add(parse_stream(stream, **kwargs), label or path)
        except _Unsupported as e:
            return self._done(path, reason='no decompressor', msg=str(e), strict=strict)
        except _READ_ERRORS as e:
            if fmt is not None and not isinstance(e, (IOError, OSError)) or type(e).__name__ == 'BadGzipFile':
                msg = 'cannot read %s: it is not a valid %s file (damaged or cut short); skipped' % (path, fmt)
                return self._done(path, reason='corrupt', msg=msg, strict=strict)
            return self._done(path, reason=_reason(e), strict=strict,
                              msg='cannot read %s: %s' % (path, getattr(e, 'strerror', None) or 'read error'))
        return self._done(label or path, count)

    # --- merging ----------------------------------------------------------------------------

    def _add(self, events, label, boot=None):
        count = 0
        for event in events:
            if boot is not None:
                event['boot'] = boot
            epoch = event['epoch']
            if self.since_epoch is not None and (epoch is None or epoch < self.since_epoch):
                continue
            event['label'] = label
            self.events.append(event)
            count += 1
        return count

    def result(self):
        timed = sorted((e for e in self.events if e['epoch'] is not None), key=lambda e: e['epoch'])
        untimed = [e for e in self.events if e['epoch'] is None]
        kept = []
        recent = {}
        for event in untimed + timed:
            keys = _dedup_keys(event)
            twin = None
            for key in keys:
                seen = recent.get(key)
                if seen is not None and _close(seen, event):
                    twin = seen
                    break
            if twin is not None:
                _merge(twin, event)
                continue
            kept.append(event)
            for key in keys:
                recent[key] = event
        return kept


class _Unsupported(Exception):
    pass


def _open_compressed(path, fmt):
    if fmt == 'gzip':
        return gzip.open(path, 'rb')
    if fmt == 'xz':
        return lzma.open(path, 'rb')
    if fmt == 'bzip2':
        return bz2.open(path, 'rb')
    return _ZstdStream(path)


class _ZstdStream(object):
    """`zstd -dc` as a binary stream (Python has no zstd module before 3.14)."""

    def __init__(self, path):
        tool = _which('zstd')
        if tool is None:
            raise _Unsupported('cannot read %s: it is zstd-compressed and the zstd command was not found; '
                               'install zstd or decompress it first' % path)
        self.path = path
        self.proc = subprocess.Popen([tool, '-dc', '--', path], stdout=subprocess.PIPE,  # pylint: disable=ansible-bad-function
                                     stderr=subprocess.DEVNULL)
        widen_pipe(self.proc.stdout)

    def read(self, size=-1):
        return self.proc.stdout.read(size)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.stdout.close()
        if self.proc.wait() != 0 and exc[0] is None:
            raise zlib.error('zstd failed')
        return False


class _BytesStream(object):
    """bytes as a read()-able stream without a copy per read."""

    def __init__(self, data):
        self.view = memoryview(data)
        self.pos = 0

    def read(self, size=-1):
        end = len(self.view) if size is None or size < 0 else self.pos + size
        chunk = self.view[self.pos:end].tobytes()
        self.pos += len(chunk)
        return chunk


class _KmsgStream(object):
    """/dev/kmsg (or a copy of it) as a stream read without blocking, until the buffer is drained."""

    def __init__(self, fd):
        self.fd = fd

    def read(self, size=-1):
        while True:
            try:
                return os.read(self.fd, 65536)
            except (OSError, IOError) as e:
                if e.errno == errno.EAGAIN:
                    return b''
                if e.errno == errno.EPIPE:
                    continue    # the record we were about to read was overwritten; the next read goes on
                raise


def _workers():
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def parse_file(path, size, kwargs, workers=None):
    """Event values of one plain log file, in file order.

    A large file is cut into one segment per CPU at line starts; forked workers parse the later
    segments while this process parses the first, so a big log costs about what one grep costs.
    A report that crosses a cut is finished by the segment it started in, and the next segment
    drops its own copy of it (the events that start on lines the previous segment already read).
    """
    if workers is None:
        workers = _workers()
    if workers < 2 or size < PARALLEL_MIN_BYTES or not hasattr(os, 'fork'):
        with open(path, 'rb', buffering=0) as stream:
            yield from parse_stream(stream, **kwargs)
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
            children.append(_fork_segment(path, kwargs, bounds[k], bounds[k + 1]))
        results = [_segment(path, kwargs, bounds[0], bounds[1])]
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
            line = base + event['line']
            if k and line <= consumed:
                continue
            event['line'] = line
            yield event
        consumed = max(consumed, base + result['lines'])
        base += result['lines_at_end']


def _segment(path, kwargs, start, end):
    stats = {}
    with open(path, 'rb', buffering=0) as stream:
        stream.seek(start)
        events = list(parse_stream(stream, end=None if end is None else end - start, stats=stats, **kwargs))
    return {'events': events, 'lines': stats['lines'], 'lines_at_end': stats['lines_at_end']}


def _fork_segment(path, kwargs, start, end):
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_fd)
            payload = json.dumps(_segment(path, kwargs, start, end)).encode('utf-8')
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


def _close(event_a, event_b):
    """True when two events are copies of one: the same process within seconds, or the same kernel stamp."""
    victim_a, victim_b = event_a['victim'], event_b['victim']
    if victim_a is not None and victim_b is not None and victim_a['pid'] != victim_b['pid']:
        return False        # one trigger can invoke the OOM killer twice in a second, with two victims
    epoch_a, epoch_b = event_a['epoch'], event_b['epoch']
    if event_a['label'] == event_b['label']:
        # one file quoting a kernel line twice (a relay and the kernel itself): same pid, same second
        return epoch_a is not None and epoch_b is not None and abs(epoch_a - epoch_b) <= 1.0 and \
            event_a['line'] != event_b['line'] and event_a['victim'] is not None and event_b['victim'] is not None
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
