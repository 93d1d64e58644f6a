# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming parser of kernel OOM-killer reports: log lines in, one dict per OOM invocation out.

Private to the oomguard.memory collection: no compatibility promise to other code.

Map of this file:

* ``_split_prefix`` strips whatever the log transport put in front of the kernel message
  (dmesg ``[uptime]``, ``dmesg -T``, syslog, RFC 3339, journalctl short*, /dev/kmsg records)
  and keeps the raw stamp; stamps become times only for the few lines that start an event.
* ``_Parser.feed`` is the state machine.  Outside an OOM report it looks only at lines that
  contain one of ``NEEDLES`` (every report has a header with ``oom-kill`` or a kill line with
  ``ill process``); inside a report (``wants_all``) it reads every line.
* ``parse_lines`` drives it from any iterable of text lines; ``parse_stream`` drives it from a
  binary file: per chunk it finds the needles with ``bytes.rfind`` and counts the newlines it
  skips with ``bytes.replace`` (see ``_SCAN_NEEDLES`` and ``_newlines`` for why these two), so a
  1 GiB log costs little more than one ``grep``.

Event semantics: one event per invocation of the OOM killer.  A header ("invoked oom-killer")
opens an event; the kill line that follows belongs to it.  The kernel rate-limits the header and
its dump but never the kill line, so a kill line with no open header is an event of its own with
``trigger: None``; a header with no kill line is an event with ``victim: None``.

Detail blocks (only when asked, else absent; None when the report did not print them):
``tasks`` is a list of task-table rows keyed by the table's own column names (``pid``, ``uid``,
``tgid``, ``total_vm``, ``rss``, ..., ``name``; page counts as printed), ``meminfo`` a dict of the
Mem-Info summary counters in pages (``active_anon``, ``free``, ...) plus ``free_swap_kb``,
``total_swap_kb``, ``pages_ram``, ``pages_reserved``, ``total_pagecache_pages`` when printed, and
``memcg_stats`` a dict ``{path, stats, memory, memory+swap, kmem, swap}`` where each usage entry
is ``{usage_kb, limit_kb, failcnt}`` and ``stats`` holds the "Memory cgroup stats" values (bytes
from 5.x on; the older one-line form ``rss:980KB`` becomes ``rss_kb: 980``).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import calendar
import json
import re
import time

DETAILS = ('tasks', 'meminfo', 'memcg_stats')

# Every line that can open an event holds 'oom-kill' (header, oom-kill: summary) or 'Killed
# process'.  A "Kill process ... score" selection line, printed just before its kill line when the
# kernel rate-limited the header, is picked up as the line before the kill line.
NEEDLES = (b'oom-kill', b'Killed process')
# journald stores non-UTF-8 messages as a list of byte values, which no substring test can see.
_JSON_BYTES_MARK = '"MESSAGE":['
# How parse_stream finds NEEDLES in a chunk: (searched, then checked at the hit).  CPython's
# reverse search (rfind) tests the needle's first byte and jumps len+1 bytes whenever the byte
# before is not in the needle's bloom mask.  On kernel logs that beats or equals find() for these
# needles whether the interpreter was built with PGO or not (0.21+0.26 s/GiB on Debian's 3.11,
# 0.28+0.35 on a plain 3.13 build, against 0.43+0.34 and 0.43+0.35 for find() of NEEDLES):
# find() of 'Killed process' uses the two-way search keyed on its common last byte 's', and find()
# of needles under 6 bytes is a loop twice as slow without PGO.  'Killed' scans faster than
# 'Killed process'; the check keeps the hits exactly those of NEEDLES.  One shared needle such as
# b'ill' is not cheaper to scan and hits every "will", "still" and "Killing" of ordinary kernel
# noise (half a million hits per GiB of bench/oom_facts.py's log), each a Python-level check.
_SCAN_NEEDLES = ((b'oom-kill', None), (b'Killed', b'Killed process'))
# Below this many bytes, bytes.count (a byte loop) beats copying the slice for _newlines.
_SMALL_COUNT = 4096

# After a kill line, how many more lines may still tell about it (oom_reaper, group kills).
_TAIL_LINES = 8
# A report (header to kill line) longer than this is a damaged log, not one report.
_MAX_REPORT_LINES = 200000
# No kernel message is this long (printk's limit is 1 KiB); longer "lines" are binary junk.
_MAX_LINE = 1 << 16

_MONTHS = {'Jan': 1, 'Feb': 2, 'Mar': 3, 'Apr': 4, 'May': 5, 'Jun': 6,
           'Jul': 7, 'Aug': 8, 'Sep': 9, 'Oct': 10, 'Nov': 11, 'Dec': 12}

_P = {
    # --- prefixes -------------------------------------------------------------------------
    'kmsg': re.compile(r'^\d+,\d+,(\d+),[^;]*;'),
    'dmesg': re.compile(r'^\[\s*(\d+\.\d+)\]\s?'),
    'dmesg_t': re.compile(r'^\[(?:\w{3} )?(\w{3}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4})\]\s?'),
    'syslog': re.compile(r'^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) (\d\d):(\d\d):(\d\d)(\.\d+)? '
                         r'(?:(?P<host>[^\s:]+) )?(?P<prog>[^\s:\[]+)(?:\[[^\]]*\])?: ?'),
    'iso': re.compile(r'^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)? '
                      r'(?:(?P<host>[^\s:]+) )?(?P<prog>[^\s:\[]+)(?:\[[^\]]*\])?: ?'),
    # after "kernel:": relay oddities (": "), a syslog priority "<4>", then maybe "[uptime]"
    'after_prog': re.compile(r'^(?::\s*)?(?:<\d+>)?(?:\[\s*(\d+\.\d+)\]\s?)?'),
    # journalctl -o short-monotonic: "[ 12.345678] host kernel: msg"
    'mono_host': re.compile(r'^[^\s:\[]+ kernel: ?'),
    # --- report lines -------------------------------------------------------------------------
    'header': re.compile(r'^(?:(?P<name>.*?) )?invoked oom-killer: gfp_mask=(?P<gfp>0x[0-9a-fA-F]+)'),
    'header_old': re.compile(r'^oom-killer: gfp_mask=(?P<gfp>0x[0-9a-fA-F]+)'),
    'order': re.compile(r'[ ,]order=(-?\d+)(?=[,\s]|$)'),
    'score_adj_eq': re.compile(r'oom_score_adj=(-?\d+)(?=[,\s]|$)'),
    'cpu': re.compile(r'^(?:CPU: \d+ (?:UID: \d+ )?PID: (\d+) Comm: |Pid: (\d+), comm: )'),
    'summary': re.compile(r'^oom-kill:constraint=(?P<c>CONSTRAINT_[A-Z_]+)(?=,|$)'),
    'summary_memcg': re.compile(r',oom_memcg=(.*?),task_memcg='),
    'summary_task_memcg': re.compile(r',task_memcg=(.*?),task='),
    'selection': re.compile(r'^(?:(?P<msg>.*?): )?[Kk]ill process (?P<pid>\d+) \((?P<name>.*)\) score '),
    'kill': re.compile(r'^(?:(?P<msg>.*?): )?Killed process (?P<pid>\d+)(?:, UID (?P<uid>\d+),)? '
                       r'\((?P<name>.*)\)(?P<rest>,? (?:UID|total-vm).*|\.?\s*)$'),
    'kill_pid_only': re.compile(r'^(?:(?P<msg>.*?): )?Killed process (?P<pid>\d+)(?:, UID (?P<uid>\d+),)? \('),
    'total_vm': re.compile(r'total-vm:(\d+)kB'),
    'anon_rss': re.compile(r'anon-rss:(\d+)kB'),
    'file_rss': re.compile(r'file-rss:(\d+)kB'),
    'shmem_rss': re.compile(r'shmem-rss:(\d+)kB'),
    'uid_colon': re.compile(r'UID:(\d+)(?=[,\s]|$)'),
    'uid_rhel7': re.compile(r'^, UID (\d+),'),
    'pgtables': re.compile(r'pgtables:(\d+)kB'),
    'score_adj_colon': re.compile(r'oom_score_adj:(-?\d+)(?=[,\s]|$)'),
    'reaper': re.compile(r'^oom_reaper: reaped process (\d+) \('),
    'exiting': re.compile(r'OOM victim (\d+) \(.*\) is already exiting'),
    'task_in': re.compile(r'^Task in (?P<task>.+) killed as a result of limit of (?P<limit>.+?)\s*$'),
    'task_header': re.compile(r'^\[\s*pid\s*\]\s+(.*\bname)\s*$'),
    'task_row': re.compile(r'^\[\s*(\d+)\]\s+(.*)$'),
    'meminfo_pairs': re.compile(r'^\s*[a-z_]+:\d+(?:\s+[a-z_]+:\d+)*\s*$'),
    'pair': re.compile(r'([a-z_]+):(\d+)'),
    'meminfo_total': re.compile(r'^\s*(?:(Free swap|Total swap)\s+=\s+(\d+)kB|(\d+) (pages RAM|pages reserved|total pagecache pages))\s*$'),
    'memcg_usage': re.compile(r'^(memory|memory\+swap|kmem|swap|kmem\.tcp|tcpmem): usage (\d+)kB, limit (\d+)kB, failcnt (\d+)'),
    'memcg_stats_head': re.compile(r'^Memory cgroup stats for (.*?):(.*)$'),
    'memcg_stat_kb': re.compile(r'([a-z_]+):(\d+)KB'),
    'memcg_stat_line': re.compile(r'^\s*([a-z_]+) (\d+)\s*$'),
}

_MEMINFO_TOTAL_KEYS = {'Free swap': 'free_swap_kb', 'Total swap': 'total_swap_kb', 'pages RAM': 'pages_ram',
                       'pages reserved': 'pages_reserved', 'total pagecache pages': 'total_pagecache_pages'}


def _int(match, group=1):
    return int(match.group(group)) if match else None


def _iso(epoch, fraction):
    """ISO-8601 UTC; microseconds only when the log printed sub-second precision."""
    whole = int(epoch // 1)
    text = time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))
    if fraction:
        text += '.%06d' % int(round((epoch - whole) * 1000000) % 1000000)
    return text + 'Z'


def _drop_elision(msg):
    """Lines cut by an editor or a relay end in '...': the last token is partial, so drop it."""
    if msg.endswith('...') or msg.endswith(u'\u2026'):
        msg = msg.rstrip(u'.\u2026')
        cut = max(msg.rfind(' '), msg.rfind(','))
        return msg[:cut] if cut > 0 else ''
    return msg


class _Stamp(object):
    """The raw time stamp of a line; turned into epoch seconds only when an event needs it."""
    __slots__ = ('kind', 'match', 'uptime', 'host', 'epoch', 'fraction')

    def __init__(self, kind, match=None, uptime=None, host=None, epoch=None, fraction=False):
        self.kind = kind
        self.match = match
        self.uptime = uptime
        self.host = host
        self.epoch = epoch
        self.fraction = fraction


class _Event(object):
    __slots__ = ('lineno', 'stamp', 'trigger', 'trigger_pid_seen', 'victim', 'constraint', 'oom_memcg',
                 'task_memcg', 'memcg_hint', 'global_hint', 'reaped', 'no_killable', 'panic', 'summary_seen',
                 'selection_seen', 'exiting', 'tasks', 'task_cols', 'meminfo', 'memcg_stats', 'block')

    def __init__(self, lineno, stamp):
        self.lineno = lineno
        self.stamp = stamp
        self.trigger = None
        self.trigger_pid_seen = False
        self.victim = None
        self.constraint = None
        self.oom_memcg = None
        self.task_memcg = None
        self.memcg_hint = False
        self.global_hint = False
        self.reaped = False
        self.no_killable = False
        self.panic = False
        self.summary_seen = False
        self.selection_seen = False
        self.exiting = False
        self.tasks = None
        self.task_cols = None
        self.meminfo = None
        self.memcg_stats = None
        # which multi-line block the next continuation line belongs to: None, 'meminfo', 'stats'
        self.block = None


class _Parser(object):
    """State machine over kernel messages; see the module docstring for the event rules."""

    def __init__(self, source, details=(), year=None, boot_time=None, ref_time=None):
        self.source = source
        self.details = frozenset(d for d in details if d in DETAILS)
        self.boot_time = boot_time
        if ref_time is None and year is None:
            ref_time = time.time()
        if year is None:
            year = time.localtime(ref_time).tm_year
        self.year = year
        self.ref_time = ref_time
        self.event = None
        self.in_report = False
        self.report_lines = 0
        self.tail = 0
        self.kmsg_seen = False

    @property
    def wants_all(self):
        return self.in_report or self.tail > 0

    # --- prefixes ---------------------------------------------------------------------------

    def _split_prefix(self, line):
        """Return (message, stamp), or (None, None) for lines that are not kernel messages."""
        first = line[:1]
        if first == '[':
            m = _P['dmesg'].match(line)
            if m:
                msg = line[m.end():]
                h = _P['mono_host'].match(msg)
                if h:
                    msg = msg[h.end():]
                return msg, _Stamp('uptime', uptime=float(m.group(1)))
            m = _P['dmesg_t'].match(line)
            if m:
                return line[m.end():], _Stamp('dmesg_t', m)
            return line, None
        if first.isdigit():
            m = _P['kmsg'].match(line)
            if m:
                self.kmsg_seen = True
                return line[m.end():], _Stamp('uptime', uptime=int(m.group(1)) / 1000000.0)
            m = _P['iso'].match(line)
            if m:
                return self._after_prog(line, m, 'iso')
            return line, None
        if first == ' ' and self.kmsg_seen:
            # /dev/kmsg dictionary lines (" SUBSYSTEM=...") carry no message
            stripped = line.lstrip()
            eq = stripped.find('=')
            if eq > 0 and stripped[:eq].isupper():
                return None, None
            return line, None
        m = _P['syslog'].match(line) if first.isupper() else None
        if m:
            return self._after_prog(line, m, 'syslog')
        return line, None

    def _after_prog(self, line, m, kind):
        if m.group('prog') != 'kernel':
            return None, None
        rest = line[m.end():]
        a = _P['after_prog'].match(rest)
        uptime = None
        if a.end():
            if a.group(1):
                uptime = float(a.group(1))
            rest = rest[a.end():]
        return rest, _Stamp(kind, m, uptime=uptime, host=m.group('host'))

    def _epoch(self, stamp):
        """Fill stamp.epoch (UTC seconds) from whatever the line carried."""
        if stamp.epoch is not None or stamp.kind is None:
            return
        m = stamp.match
        if stamp.kind == 'uptime':
            if self.boot_time is not None and stamp.uptime is not None:
                stamp.epoch = self.boot_time + stamp.uptime
                stamp.fraction = True
        elif stamp.kind == 'dmesg_t':
            # dmesg -T prints local time of the host it ran on
            mon = _MONTHS.get(m.group(1))
            if mon:
                stamp.epoch = time.mktime((int(m.group(6)), mon, int(m.group(2)), int(m.group(3)), int(m.group(4)),
                                           int(m.group(5)), 0, 0, -1))
        elif stamp.kind == 'syslog':
            mon = _MONTHS[m.group(1)]
            fields = (mon, int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)), 0, 0, -1)
            epoch = time.mktime((self.year,) + fields)
            # no year in the line: a date after the file's mtime is from the year before
            if self.ref_time is not None and epoch > self.ref_time + 86400:
                epoch = time.mktime((self.year - 1,) + fields)
            if m.group(6):
                epoch += float(m.group(6))
                stamp.fraction = True
            stamp.epoch = epoch
        elif stamp.kind == 'iso':
            epoch = float(calendar.timegm((int(m.group(1)), int(m.group(2)), int(m.group(3)),
                                           int(m.group(4)), int(m.group(5)), int(m.group(6)), 0, 0, 0)))
            tz = m.group(8)
            if tz and tz != 'Z':
                sign = -1 if tz[0] == '-' else 1
                digits = tz[1:].replace(':', '')
                epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60)
            elif not tz:
                epoch = time.mktime(time.gmtime(epoch)[:8] + (-1,))
            if m.group(7):
                epoch += float(m.group(7))
                stamp.fraction = True
            stamp.epoch = epoch

    # --- driving ----------------------------------------------------------------------------

    def feed(self, lineno, line):
        """Consume one line (str, no newline); return a list of finished events (usually empty)."""
        if line[:1] == '{':
            return self._feed_json(lineno, line)
        msg, stamp = self._split_prefix(line)
        if msg is None:
            return []
        if self.kmsg_seen and '\\x0a' in msg:
            out = []
            for part in msg.split('\\x0a'):
                out.extend(self._message(lineno, part, stamp))
            return out
        return self._message(lineno, msg, stamp)

    def _feed_json(self, lineno, line):
        try:
            rec = json.loads(line)
        except ValueError:
            return self._message(lineno, line, None)
        if not isinstance(rec, dict):
            return []
        ident = rec.get('SYSLOG_IDENTIFIER')
        transport = rec.get('_TRANSPORT')
        if transport not in (None, 'kernel') or ident not in (None, 'kernel'):
            return []
        text = rec.get('MESSAGE')
        if isinstance(text, list):
            try:
                text = bytes(bytearray(text)).decode('utf-8', 'replace')
            except (TypeError, ValueError):
                return []
        if not isinstance(text, str):
            return []
        stamp = _Stamp(None, host=rec.get('_HOSTNAME'))
        try:
            if rec.get('__REALTIME_TIMESTAMP'):
                stamp.epoch = int(rec['__REALTIME_TIMESTAMP']) / 1000000.0
                stamp.fraction = True
            if rec.get('_SOURCE_MONOTONIC_TIMESTAMP'):
                stamp.uptime = int(rec['_SOURCE_MONOTONIC_TIMESTAMP']) / 1000000.0
        except (TypeError, ValueError):
            pass
        out = []
        for part in text.split('\n'):
            out.extend(self._message(lineno, part, stamp))
        return out

    def finish(self):
        """End of input: return the open event, if any."""
        done = self._close()
        return [done] if done else []

    # --- the state machine ------------------------------------------------------------------

    def _open(self, lineno, stamp):
        done = self._close()
        self.event = _Event(lineno, stamp)
        return done

    def _close(self):
        ev = self.event
        self.event = None
        self.in_report = False
        self.tail = 0
        if ev is None:
            return None
        return self._to_dict(ev)

    def _message(self, lineno, msg, stamp):
        """One kernel message (prefix already stripped).  Returns finished events."""
        out = []
        if self.tail > 0:
            self.tail -= 1
            if self.tail == 0 and not self.in_report:
                # the report is over: a later kill line is another invocation
                done = self._close()
                if done:
                    out.append(done)
        if self.in_report:
            self.report_lines += 1
            if self.report_lines > _MAX_REPORT_LINES:
                done = self._close()
                if done:
                    out.append(done)
        msg = _drop_elision(msg.rstrip('\r\n'))
        ev = self.event

        if 'oom-kill' in msg:
            if 'invoked oom-killer:' in msg or msg.startswith('oom-killer:'):
                m = _P['header'].match(msg) or _P['header_old'].match(msg)
                if m:
                    done = self._open(lineno, stamp)
                    if done:
                        out.append(done)
                    self.in_report = True
                    self.report_lines = 0
                    self._header(self.event, msg, m)
                return out
            if msg.startswith('oom-kill:'):
                m = _P['summary'].match(msg)
                if m:
                    if ev is None or ev.summary_seen or ev.victim or ev.selection_seen:
                        done = self._open(lineno, stamp)
                        if done:
                            out.append(done)
                        ev = self.event
                        self.in_report = True
                        self.report_lines = 0
                    self._summary(ev, msg, m)
                return out

        if 'Kill' in msg or (self.in_report and 'kill process' in msg):
            if 'Killed process' in msg:
                m = _P['kill'].match(msg) or _P['kill_pid_only'].match(msg)
                if m:
                    if ev is None or ev.victim is not None:
                        done = self._open(lineno, stamp)
                        if done:
                            out.append(done)
                        ev = self.event
                    self._kill(ev, m)
                    self.in_report = False
                    self.tail = _TAIL_LINES
                return out
            m = _P['selection'].match(msg)
            if m:
                if ev is None or ev.selection_seen or ev.victim is not None:
                    done = self._open(lineno, stamp)
                    if done:
                        out.append(done)
                    ev = self.event
                ev.selection_seen = True
                self._kind_from_message(ev, m.group('msg'))
                self.in_report = True
                self.report_lines = 0
                return out

        if ev is None or not self.wants_all:
            return out
        self._report_line(ev, msg)
        return out

    def _report_line(self, ev, msg):
        """A line inside a report (between header and kill, or shortly after the kill)."""
        text = msg.strip()
        if not text:
            return
        if text.startswith('oom_reaper:'):
            m = _P['reaper'].match(text)
            if m and ev.victim and ev.victim['pid'] == int(m.group(1)):
                ev.reaped = True
            return
        # the kernel ends this line with '...', so the last word is dropped as if elided
        if 'no killable' in text:
            ev.no_killable = True
            self.in_report = False
            self.tail = _TAIL_LINES
            return
        if ('panic' in text and 'ut of memory' in text) or 'deadlocked on memory' in text:
            ev.panic = True
            self.in_report = False
            self.tail = _TAIL_LINES
            return
        if not self.in_report:
            if 'is already exiting' in text and ev.victim is None:
                ev.exiting = True
            return
        if ev.block == 'stats' and ev.memcg_stats is not None:
            m = _P['memcg_stat_line'].match(text)
            if m:
                ev.memcg_stats['stats'][m.group(1)] = int(m.group(2))
                return
            ev.block = None
        if text[0] == '[':
            self._task_line(ev, text)
            return
        if 'is already exiting' in text:
            ev.exiting = True
            return
        if text.startswith('CPU:') or text.startswith('Pid:'):
            m = _P['cpu'].match(text)
            if m and ev.trigger is not None and not ev.trigger_pid_seen:
                ev.trigger['pid'] = int(m.group(1) or m.group(2))
                ev.trigger_pid_seen = True
            return
        if text.startswith('Task in '):
            m = _P['task_in'].match(text)
            if m:
                ev.task_memcg = ev.task_memcg or m.group('task')
                ev.oom_memcg = ev.oom_memcg or m.group('limit')
                ev.memcg_hint = True
            return
        if text == 'Mem-Info:':
            ev.global_hint = True
            ev.block = 'meminfo'
            if 'meminfo' in self.details:
                ev.meminfo = {}
            return
        if ev.block == 'meminfo':
            self._meminfo_line(ev, text)
            return
        if 'usage' in text or text.startswith('Memory cgroup stats for '):
            self._memcg_line(ev, text)

    def _task_line(self, ev, text):
        m = _P['task_header'].match(text)
        if m:
            ev.block = None
            ev.task_cols = m.group(1).split()
            if 'tasks' in self.details:
                ev.tasks = []
            return
        if ev.task_cols is None or ev.tasks is None:
            return
        m = _P['task_row'].match(text)
        if not m:
            return
        cols = ev.task_cols
        parts = m.group(2).split(None, len(cols) - 1)
        if len(parts) != len(cols):
            return
        row = {'pid': int(m.group(1))}
        try:
            for key, value in zip(cols[:-1], parts[:-1]):
                row[key] = int(value)
        except ValueError:
            return
        row[cols[-1]] = parts[-1]
        ev.tasks.append(row)

    def _meminfo_line(self, ev, text):
        if ev.meminfo is None:
            return
        if _P['meminfo_pairs'].match(text):
            for key, value in _P['pair'].findall(text):
                ev.meminfo.setdefault(key, int(value))
            return
        m = _P['meminfo_total'].match(text)
        if m:
            if m.group(1):
                ev.meminfo[_MEMINFO_TOTAL_KEYS[m.group(1)]] = int(m.group(2))
            else:
                ev.meminfo[_MEMINFO_TOTAL_KEYS[m.group(4)]] = int(m.group(3))

    def _memcg_line(self, ev, text):
        m = _P['memcg_usage'].match(text)
        if m:
            ev.memcg_hint = True
            if 'memcg_stats' in self.details:
                usage = {'usage_kb': int(m.group(2)), 'limit_kb': int(m.group(3)), 'failcnt': int(m.group(4))}
                self._memcg_stats(ev)[m.group(1)] = usage
            return
        m = _P['memcg_stats_head'].match(text)
        if m:
            ev.memcg_hint = True
            if 'memcg_stats' in self.details:
                stats = self._memcg_stats(ev)
                stats['path'] = m.group(1)
                # before 5.x the stats follow on the same line as "name:valueKB"
                for key, value in _P['memcg_stat_kb'].findall(m.group(2)):
                    stats['stats'][key + '_kb'] = int(value)
                ev.block = 'stats'

    @staticmethod
    def _memcg_stats(ev):
        if ev.memcg_stats is None:
            ev.memcg_stats = {'path': None, 'stats': {}}
        return ev.memcg_stats

    # --- line decoders ----------------------------------------------------------------------

    @staticmethod
    def _header(ev, msg, m):
        name = m.groupdict().get('name')
        adj = _P['score_adj_eq'].search(msg, m.end())
        ev.trigger = {'name': name if name else None, 'pid': None, 'gfp_mask': m.group('gfp'),
                      'order': _int(_P['order'].search(msg, m.end())), 'oom_score_adj': _int(adj)}

    @staticmethod
    def _summary(ev, msg, m):
        ev.summary_seen = True
        ev.constraint = m.group('c')
        memcg = _P['summary_memcg'].search(msg)
        if memcg:
            ev.oom_memcg = memcg.group(1)
        elif ',global_oom' in msg:
            ev.global_hint = True
        task_memcg = _P['summary_task_memcg'].search(msg)
        if task_memcg:
            ev.task_memcg = task_memcg.group(1)

    def _kill(self, ev, m):
        ev.exiting = False
        groups = m.groupdict()
        rest = groups.get('rest') or ''
        uid = groups.get('uid')
        victim = {'pid': int(m.group('pid')), 'name': groups.get('name'), 'uid': int(uid) if uid else None,
                  'total_vm_kb': _int(_P['total_vm'].search(rest)), 'anon_rss_kb': _int(_P['anon_rss'].search(rest)),
                  'file_rss_kb': _int(_P['file_rss'].search(rest)), 'shmem_rss_kb': _int(_P['shmem_rss'].search(rest)),
                  'pgtables_kb': _int(_P['pgtables'].search(rest)),
                  'oom_score_adj': _int(_P['score_adj_colon'].search(rest))}
        if victim['uid'] is None:
            victim['uid'] = _int(_P['uid_colon'].search(rest) or _P['uid_rhel7'].match(rest))
        ev.victim = victim
        self._kind_from_message(ev, groups.get('msg'))

    @staticmethod
    def _kind_from_message(ev, text):
        if not text:
            return
        if text.endswith('Memory cgroup out of memory'):
            ev.memcg_hint = True
        elif text.endswith('Out of memory'):
            # "Out of Memory" (capital M, 2.x) said nothing about the scope
            ev.global_hint = True

    def _to_dict(self, ev):
        stamp = ev.stamp
        epoch = uptime = host = None
        fraction = False
        if stamp is not None:
            self._epoch(stamp)
            epoch, uptime, host, fraction = stamp.epoch, stamp.uptime, stamp.host, stamp.fraction
        if ev.constraint == 'CONSTRAINT_MEMCG' or ev.oom_memcg or ev.memcg_hint:
            kind = 'memcg'
        elif ev.global_hint or ev.constraint:
            kind = 'global'
        else:
            kind = None
        out = {
            'time': _iso(epoch, fraction) if epoch is not None else None,
            'uptime': uptime,
            'host': host,
            'source': '%s:%d' % (self.source, ev.lineno),
            'kind': kind,
            'constraint': ev.constraint,
            'oom_memcg': ev.oom_memcg,
            'task_memcg': ev.task_memcg,
            'trigger': ev.trigger,
            'victim': ev.victim,
            'reaped': ev.reaped,
            'no_killable': ev.no_killable,
            'panic': ev.panic,
        }
        if 'tasks' in self.details:
            out['tasks'] = ev.tasks
        if 'meminfo' in self.details:
            out['meminfo'] = ev.meminfo
        if 'memcg_stats' in self.details:
            out['memcg_stats'] = ev.memcg_stats
        return out


def parse_lines(lines, source, details=(), year=None, boot_time=None, ref_time=None):
    """Yield events (dicts) from an iterable of text lines, in file order.

    lines: str (or bytes, decoded as UTF-8 with replacement), with or without the newline.
    source: label such as '/var/log/kern.log' or 'kmsg'; each event's 'source' is
    '<source>:<line>' with the 1-based line of the event's first line.
    details: any of 'tasks', 'meminfo', 'memcg_stats' to attach those blocks.
    year: the year of syslog lines that carry none; ref_time (epoch seconds, normally the file's
    mtime) makes a date later than it count as the year before (New Year roll-back).  With
    neither, the current year and time are used.
    boot_time: epoch seconds of this boot; turns dmesg/kmsg uptimes into absolute times (None:
    those events get time None).
    Holds at most one event in memory.
    """
    parser = _Parser(source, details, year, boot_time, ref_time)
    for lineno, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            line = line.decode('utf-8', 'replace')
        if not parser.wants_all:
            if 'oom-kill' not in line and 'Kill' not in line and not (line[:1] == '{' and _JSON_BYTES_MARK in line):
                continue
        yield from parser.feed(lineno, line.rstrip('\r\n'))
    yield from parser.finish()


def parse_stream(stream, source, details=(), year=None, boot_time=None, ref_time=None, end=None, stats=None,
                 chunk_size=1 << 20):
    """Like parse_lines, for a binary file object (plain or gzip): jumps from needle to needle.

    Reads fixed-size chunks, so memory stays at a few chunk sizes whatever the file size.
    Invalid UTF-8 and binary junk are decoded with replacement characters.
    end: stop at the first line that starts at or after this many bytes from where the stream
    was when called, unless a report is still open there (then read on until it is over).
    stats: a dict that receives 'lines' (lines read) and 'lines_at_end' (lines before `end`).
    """
    parser = _Parser(source, details, year, boot_time, ref_time)
    scan = _Scan(stream, parser, end, chunk_size)
    yield from scan.run()
    yield from parser.finish()
    if stats is not None:
        stats['lines'] = scan.lines
        stats['lines_at_end'] = scan.lines if scan.lines_at_end is None else scan.lines_at_end


def _newlines(data, start=0, end=None):
    """Number of b'\n' in data[start:end].

    bytes.count of one byte is a plain byte loop (about 1 s/GiB on CPython 3.11); replace() of one
    byte by nothing finds them with memchr and copies the rest (about 0.25 s/GiB), so count the
    bytes it removed.  The whole chunk needs no slice; a part is sliced first unless it is small.
    """
    if end is None:
        end = len(data)
    if end - start < _SMALL_COUNT:
        return data.count(b'\n', start, end)
    if start or end != len(data):
        data = data[start:end]
    return len(data) - len(data.replace(b'\n', b''))


def _anchors(data, start, end, needles):
    """Offsets of the needle hits in data[start:end] (whole lines), in ascending order."""
    found = []
    for needle, whole in needles:
        back = len(needle) - 1
        at = data.rfind(needle, start, end)
        while at >= 0:
            if whole is None or data.startswith(whole, at):
                found.append(at)
            at = data.rfind(needle, start, at + back)
    found.sort()
    return found


class _Scan(object):
    """The needle-to-needle walk of parse_stream, with its line count."""

    def __init__(self, stream, parser, end, chunk_size):
        self.stream = stream
        self.parser = parser
        self.end = end
        self.chunk_size = chunk_size
        self.needles = NEEDLES              # tested on one line with `in`
        self.scan_needles = _SCAN_NEEDLES   # searched in a chunk, see _SCAN_NEEDLES
        self.lines = 0              # lines consumed so far = number of the last line fed
        self.lines_at_end = None
        self.stopped = False
        # (number, bytes) of a skipped "Kill process ... score" line that ended the previous chunk:
        # a kill line opening the next chunk belongs to its event.
        self.held = None

    def _line(self, raw):
        self.lines += 1
        return self.parser.feed(self.lines, raw.decode('utf-8', 'replace').rstrip('\r'))

    def run(self):
        parser = self.parser
        carry = None                # start of a line that goes on in the next chunk
        carry_at = 0                # its stream offset
        base = 0                    # stream offset of data[0]
        first = True
        while True:
            data = self.stream.read(self.chunk_size)
            if first:
                first = False
                # journald JSON export: non-UTF-8 messages are byte lists no substring test can see
                if data[:1] == b'{':
                    self.needles = NEEDLES + (b'"MESSAGE":[',)
                    self.scan_needles = _SCAN_NEEDLES + ((b'"MESSAGE":[', None),)
            if not data:
                if carry is not None and not self._stop_at(carry_at):
                    yield from self._line(carry)
                return
            pos = 0
            if carry is not None:
                nl = data.find(b'\n')
                if nl < 0:
                    # only binary junk has lines this long: keep their start, drop the rest
                    if len(carry) < _MAX_LINE:
                        carry += data[:_MAX_LINE - len(carry)]
                    base += len(data)
                    continue
                if self._stop_at(carry_at):
                    return
                line = carry + data[:nl] if len(carry) < _MAX_LINE else carry
                carry = None
                if parser.wants_all or any(n in line for n in self.needles):
                    yield from self._held()
                    yield from self._line(line)
                else:
                    self.lines += 1
                    self._hold(line)
                pos = nl + 1
            last = data.rfind(b'\n') + 1
            if last > pos:
                yield from self._chunk(data, pos, last, base)
                if self.stopped:
                    return
                pos = last
            if pos < len(data):
                carry = data[pos:pos + _MAX_LINE]
                carry_at = base + pos
            base += len(data)

    def _held(self):
        """Feed the held selection line when it is the line just before the next one."""
        if self.held is not None and self.held[0] == self.lines:
            return self.parser.feed(self.held[0], self.held[1].decode('utf-8', 'replace').rstrip('\r'))
        return ()

    def _hold(self, raw):
        """Remember the line just skipped (numbered self.lines) when it is a selection line."""
        self.held = (self.lines, raw) if b'ill process' in raw else None

    def _stop_at(self, offset):
        """True when the scan must stop before the line at `offset` (records the line count)."""
        if self.end is None or offset < self.end:
            return False
        if self.lines_at_end is None:
            self.lines_at_end = self.lines
        if self.parser.wants_all:
            return False
        self.stopped = True
        return True

    def _chunk(self, data, pos, last, base):
        """Lines data[pos:last] (whole lines): jump to needle hits, read every line inside reports."""
        parser = self.parser
        hits = _anchors(data, pos, last, self.scan_needles)
        k = 0
        begin = pos
        end_rel = None if self.end is None else self.end - base
        while pos < last:
            if end_rel is not None and pos >= end_rel and self._stop_at(base + pos):
                return
            if not parser.wants_all:
                limit = last if end_rel is None or end_rel <= pos else min(last, end_rel)
                while k < len(hits) and hits[k] < pos:
                    k += 1
                hit = hits[k] if k < len(hits) else -1
                if hit < 0 or hit >= limit:
                    if pos == begin and limit == last:
                        # no anchor in this chunk (the usual case): count it whole, without a copy;
                        # data[:begin] holds one newline, the end of the line carried in
                        self.lines += _newlines(data) - (1 if begin else 0)
                    else:
                        self.lines += _newlines(data, pos, limit)
                    if limit == last:
                        self._hold(data[(data.rfind(b'\n', pos, limit - 1) + 1 or pos):limit - 1])
                    pos = limit
                    continue
                start = data.rfind(b'\n', pos, hit) + 1 or pos
                if start == pos == begin:
                    yield from self._held()
                if start > pos:
                    # a "Kill process ... score" line just before the kill line opens its event
                    prev = data.rfind(b'\n', pos, start - 1) + 1 or pos
                    if data.find(b'ill process', prev, start) >= 0:
                        start = prev
                    self.lines += _newlines(data, pos, start)
                    pos = start
            nl = data.find(b'\n', pos)
            raw = data[pos:nl]
            pos = nl + 1
            yield from self._line(raw)
