# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming parser of kernel OOM-killer reports: log lines in, one event value per invocation out.

Private to the oomguard.memory collection: no compatibility promise to other code.

Map of this file, from the bytes up:

* ``oom_scan.Scan`` (its own file) walks a binary stream from needle to needle and hands whole
  lines to the reader below; ``parse_lines`` hands it any iterable of text lines.
* ``_Lines`` is the transport layer.  It finds the kernel's own text anywhere in a line
  (``_ANCHOR``: "invoked oom-killer", "oom-kill:", "Killed process", "Out of memory", ...) and
  strips whatever precedes it, whatever that is (syslog, RFC 3339/5424, journalctl short*,
  verbose ``MESSAGE=``, ``dmesg -T``/``-x``, busybox logread, hypervisor logs, ``cat -n``,
  a login prompt, mail quoting); it reads the time stamp out of that prefix.  It decodes JSON
  records (journal export, node-problem-detector events) and rejoins lines a mail client or a
  terminal wrapped (one line of look-ahead, only while a report is being read).
* ``_Messages`` is the state machine over kernel messages (prefix gone).  Outside a report it
  looks only at lines with one of ``oom_scan.NEEDLES``; inside a report (``wants_all``) at every
  line.
* Events are plain values: ``epoch`` (float UTC seconds or None), ``line`` (1-based int),
  ``uptime``, ``host``, ``boot``, ``kind``, ... ``format_event`` turns one into the documented
  fact (ISO time, ``source`` label with line number).

Event semantics: one event per invocation of the OOM killer.  A header ("invoked oom-killer")
opens an event; the kill line that follows belongs to it.  The kernel rate-limits the header and
its dump but never the kill line, so a kill line with no open header is an event of its own with
``trigger: None``; a header with no kill line is an event with ``victim: None``, unless its
``oom-kill:`` summary named the process the kernel chose (``task=,pid=,uid=``, 4.19+): an excerpt
cut before the kill line, or ``dmesg | grep oom-kill``, still names that victim, with the sizes
it did not print None (not when the kernel said the victim was already exiting).  With
memory.oom.group ("Tasks in X are going to be killed due to memory.oom.group set") the kill lines
that follow are more victims of the same invocation (``victims``, each pid once).  "Out of memory
and no killable processes" gives ``no_killable``, an OOM panic ``panic``; "OOM victim N is already
exiting" gives an event without a kill (``exiting``).  ``kind`` follows the constraint when the
kernel printed one (``CONSTRAINT_NONE`` global, ``CONSTRAINT_MEMCG`` memcg, ``CONSTRAINT_CPUSET``
cpuset, ``CONSTRAINT_MEMORY_POLICY`` mempolicy), else the report's own words.

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
import collections
import json
import quopri
import re
import time

from ansible_collections.oomguard.memory.plugins.module_utils import oom_scan

DETAILS = ('tasks', 'meminfo', 'memcg_stats')
KINDS = {'CONSTRAINT_NONE': 'global', 'CONSTRAINT_MEMCG': 'memcg', 'CONSTRAINT_CPUSET': 'cpuset',
         'CONSTRAINT_MEMORY_POLICY': 'mempolicy'}
_NEEDLE_TEXT = tuple(n.decode('ascii') for n in oom_scan.NEEDLES)
_LEAD_TEXT = tuple(m.decode('ascii') for m in oom_scan.LEAD_MARKS)
_JSON_BYTES_MARK = oom_scan.JSON_BYTES_MARK.decode('ascii')

# After a kill line, how many more lines may still tell about it (oom_reaper, group kills).
_TAIL_LINES = 10
# A report (header to kill line) longer than this is a damaged log, not one report.
_MAX_REPORT_LINES = 200000
# A report opened by a line that may be no report's (see _Event.tentative) ends this many lines
# on if nothing of a report came.
_TENTATIVE_LINES = 2000
# Kill lines without a stamp remembered between two headers (see _Messages.bare_kills).
_MAX_BARE_KILLS = 4096
# The header's own "CPU: N PID: P Comm:" line is printed by the same dump, within this many seconds
# of it; one stamped later is another dump's (a page allocation stall after dropped printk lines).
_SAME_DUMP_SECONDS = 2.0
# TASK_COMM_LEN - 1: the kernel prints at most this many characters of a process name.
_COMM_LEN = 15
# A wrapped line was long; shorter lines are not taken as cut by a mail client or terminal.
_WRAP_MIN = 60
# printk keeps at most 1 KiB of one message (less its own header): pieces of a wrapped line are
# joined up to this length, and longer text after a line is not its rest.
_MESSAGE_MAX = 1024
# Terminal width at which a copied log is cut without regard to words.
_TERMINAL_WIDTH = 80

_MONTHS = {'Jan': 1, 'Feb': 2, 'Mar': 3, 'Apr': 4, 'May': 5, 'Jun': 6,
           'Jul': 7, 'Aug': 8, 'Sep': 9, 'Oct': 10, 'Nov': 11, 'Dec': 12}
_MON = r'(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)'
# Month names of journalctl and syslog in the languages hosts commonly run in (German, French,
# Spanish, Italian, Portuguese, Dutch), by their lower-case first letters as printed.
_LOCAL_MONTHS = {
    'jan': 1, 'janv': 1, 'ene': 1, 'gen': 1, 'feb': 2, 'fév': 2, 'févr': 2, 'fev': 2, 'fevr': 2, 'mär': 3, 'mar': 3,
    'mars': 3, 'mrt': 3, 'apr': 4, 'avr': 4, 'avril': 4, 'abr': 4, 'may': 5, 'mai': 5, 'mag': 5, 'mei': 5, 'jun': 6,
    'juin': 6, 'giu': 6, 'jul': 7, 'juil': 7, 'lug': 7, 'aug': 8, 'août': 8, 'aoû': 8, 'ago': 8, 'sep': 9,
    'sept': 9, 'set': 9, 'oct': 10, 'okt': 10, 'ott': 10, 'out': 10, 'nov': 11, 'dec': 12, 'dez': 12, 'déc': 12,
    'dic': 12,
    # Polish and Czech
    'sty': 1, 'lut': 2, 'kwi': 4, 'maj': 5, 'cze': 6, 'lip': 7, 'sie': 8, 'wrz': 9, 'paź': 10, 'lis': 11, 'gru': 12,
    'led': 1, 'úno': 2, 'bře': 3, 'dub': 4, 'kvě': 5, 'čvn': 6, 'čvc': 7, 'srp': 8, 'zář': 9, 'říj': 10, 'pro': 12,
    # Russian (glibc's abbreviations, and the nominative May) and Ukrainian
    'янв': 1, 'фев': 2, 'мар': 3, 'апр': 4, 'мая': 5, 'май': 5, 'июн': 6, 'июл': 7, 'авг': 8, 'сен': 9, 'окт': 10,
    'ноя': 11, 'дек': 12,
    'січ': 1, 'лют': 2, 'бер': 3, 'кві': 4, 'тра': 5, 'чер': 6, 'лип': 7, 'сер': 8, 'вер': 9, 'жов': 10, 'лис': 11,
    'гру': 12,
}


def _month(word):
    """1-12 of an English or a localised month abbreviation, else None."""
    if word in _MONTHS:
        return _MONTHS[word]
    word = word.lower()
    return _LOCAL_MONTHS.get(word) or _LOCAL_MONTHS.get(word[:4]) or _LOCAL_MONTHS.get(word[:3])


# Where a kernel message starts inside a line, whatever came before it.
_ANCHOR = re.compile(
    r' invoked oom-killer:|oom-killer: gfp_mask=|oom-kill: ?constraint=|oom-kill:,cpuset=|'
    r'(?:Memory cgroup out of memory|[Oo]ut of [Mm]emory|No available memory(?: in cpuset)?)(?: \([\w ]+\))?: '
    r'(?=[Kk]ill|OOM victim)|'
    r'[Kk]ill(?:ed)? process +\d|Out of memory and no killable|Kernel panic - not syncing: |oom_reaper: |'
    r'Tasks? in /|Mem-[Ii]nfo:|CPU: \d+ (?:UID: \d+ )?PID: \d+ Comm: |Pid: \d+, comm: |Tasks state \(|'
    r'\[\s*pid\s*\]|Memory cgroup stats for |(?:memory|memory\+swap|kmem|swap): usage \d')
# The start of a kill line's or a header's next field (a short line cut after a comma goes on with it)
_FIELD_START = re.compile(r'(?:total-vm|vsz|anon-rss|file-rss|shmem-rss|pgtables|UID|oom_score_adj|order|'
                          r'nodemask|cpuset|mems_allowed|oom_memcg|task_memcg|task|pid|uid)[:=]')
# cgroup v1's "Task in X killed as a result of limit of Y" (before 4.19), see _Event.tentative
_LIMIT_OF = oom_scan.LIMIT_OF_MARK.decode('ascii')
_GROUP = oom_scan.GROUP_MARK.decode('ascii')          # memory.oom.group
# How a wrapped piece of a kernel line starts (mail clients break at spaces, terminals anywhere).
_CONT = re.compile(
    r'(?:total-vm|vsz|anon-rss|file-rss|shmem-rss|pgtables|oom_score_adj|oom_adj|UID|order|nodemask|'
    r'cpuset|mems_allowed|oom_memcg|task_memcg|global_oom|task|pid|uid|gfp_mask)[:=]|'
    r',|\d+kB|kB\b|process \d|\(|oom-killer|score \d|or sacrifice|killed as a result|are going to be killed')

_P = {
    # --- prefixes at the start of a line --------------------------------------------------------
    'quote': re.compile(r'^[\s>]+'),
    # the end of a JSON string value a kernel line was quoted in: escaped CR/LF, the quote, a comma
    'json_tail': re.compile(r'(?:\\[rn])*"\s*[,}\]]*\s*$'),
    'kmsg': re.compile(r'^\d+,\d+,(\d+),[^;]*;'),
    'dmesg': re.compile(r'^\[\s*(\d+\.\d+)\]\s?'),
    'syslog': re.compile(r'^' + _MON + r' +(\d{1,2}) (\d\d):(\d\d):(\d\d)(\.\d+)? '
                         r'(?:(?P<host>[^\s:]+) )?(?P<prog>[^\s:\[]+)(?:\[[^\]]*\])?: ?'),
    # journalctl -o short-unix: "1700000000.123456 host kernel: msg"
    'unix': re.compile(r'^(\d{9,12}\.\d+) (?:(?P<host>[^\s:]+) )?(?P<prog>[^\s:\[]+)(?:\[[^\]]*\])?: ?'),
    'iso': re.compile(r'^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)? '
                      r'(?:(?P<host>[^\s:]+) )?(?P<prog>[^\s:\[]+)(?:\[[^\]]*\])?: ?'),
    # after "kernel:": relay oddities (": "), a syslog priority "<4>", then maybe "[uptime]"
    'after_prog': re.compile(r'(?::\s*)?(?:<\d+>)?(?:\[\s*(\d+\.\d+)\]\s?)?'),
    # journalctl -o short-monotonic: "[ 12.345678] host kernel: msg"
    'mono_host': re.compile(r'^[^\s:\[]+ kernel: ?'),
    # --- stamps anywhere in a prefix of another shape ------------------------------------------
    # also dmesg --time-format iso (a comma before the fraction) and journalctl -o short-full (" UTC")
    'iso_any': re.compile(r'(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)([.,]\d+)?(Z|[+-]\d\d:?\d\d| UTC\b)?(?![\d.])'),
    'ctime_any': re.compile(r'(?:\w{3} )?' + _MON + r' +(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4})'),
    'syslog_any': re.compile(_MON + r' +(\d{1,2}) (\d\d):(\d\d):(\d\d)(\.\d+)?'),
    # journalctl in another language: "Mär 14", "avril 16", "déc. 3"
    # (a year after the time: dmesg -T in another language, "[ven. nov. 28 07:26:44 2025]")
    'local_any': re.compile(r'(?<!\w)([^\W\d_]{3,9})\.? +(\d{1,2}),? (\d\d):(\d\d):(\d\d)(\.\d+)?(?: (\d{4})\b)?'),
    'uptime_any': re.compile(r'\[\s*(\d+\.\d+)\]'),
    # a kernel stamp that ends the text before a message: a record run into the one before it
    'stamp_end': re.compile(r'\[\s*\d+\.\d+\]\s*$'),
    # a dmesg stamp with the kernel's six digits; _glued_records() finds the ones glued to the text
    # before them, records that lost the newline between them ("...bd53[193038.106478] memory: usage")
    'glued_uptime': re.compile(r'\[\s*\d+\.\d{6}\]'),
    # words that open a quotation right before a message ('And at last "Kernel panic - not syncing: ...')
    'prose_quote': re.compile(r'[A-Za-z]{2}[^"\'`]*\s["\'`]$'),
    # a /dev/kmsg record ("4,7005,192206114689,-;") inside a line, quoted by a program or a test
    'kmsg_any': re.compile(r'(?<![\w,.])\d{1,3},\d+,(\d+),[^;\s]*;'),
    # journalctl -o verbose: the header line of an entry ("Mon 2023-01-02 03:04:05.123456 UTC [s=...;i=...;...]"),
    # whose MESSAGE= line comes a few field lines later
    'entry_head': re.compile(r'\S+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d[.,\d]* \S+ \[s=[0-9a-f]+;i=[0-9a-f]+;'),
    'prog_tag': re.compile(r'(?:^|\s)([\w.-]+)\[\d+\]:\s*$'),
    'host_after': re.compile(r'\s+([^\s:\[\]]+)\s+kernel\b'),
    # --- report lines (searched: a prefix of an unknown shape may remain) ----------------------
    'header': re.compile(r'(?:^| )invoked oom-killer: gfp_mask=(?P<gfp>0x[0-9a-fA-F]+)'),
    'header_old': re.compile(r'oom-killer: gfp_mask=(?P<gfp>0x[0-9a-fA-F]+)'),
    # a header its poster cut after the name ("[ 2786.519080] mem_on_node0 invoked oom-killer")
    'header_bare': re.compile(r'(?P<tag>kernel: ?)?(?P<name>[^\s\[\]:][^\[\]:]{0,14}) invoked oom-killer(?:$|:)'),
    # the number ends at anything but more of a word (a comma, a space, the quote of a JSON string);
    # order= also where a blog ate the separators ("gfp_mask=0x800d0order=0oom_score_adj=0")
    'order': re.compile(r'(?<![A-Za-z_])order=(-?\d+)'),
    'score_adj_eq': re.compile(r'oom_score_adj=(-?\d+)(?![\w.])'),
    # the current task as dump_stack() names it: x86 and most others, 2.6's x86, s390 before 3.x
    'cpu': re.compile(r'(?:CPU: \d+ (?:UID: \d+ )?PID: (\d+) Comm: |Pid: (\d+), comm: |^Process .+? \(pid: (\d+), )'),
    # the kernel prints a comma after the constraint; an excerpt may end the line there or elide the
    # rest; words after it are a post's prose ("oom-kill:constraint=CONSTRAINT_MEMCG container was")
    # (a RHEL 7 kernel with the line backported prints no constraint at all: "oom-kill:,cpuset=")
    'summary': re.compile(r'oom-kill:(?: ?constraint=(?P<c>CONSTRAINT_[A-Z_]+)(?=,|\s*$|\s+(?:\.\.|\[|\(|\S+[=:]))|'
                          r'(?=,cpuset=))'),
    # the kernel prints no space after these commas; a line retyped by hand or joined again after a
    # wrap at a comma has one
    'summary_memcg': re.compile(r',\s*oom_memcg=(.*?)\s*(?=,\s*task_memcg=|,\s*task=|$)'),
    'summary_global': re.compile(r',\s*global_oom\b'),
    'summary_task_memcg': re.compile(r',\s*task_memcg=(.*?)\s*(?=,\s*task=|$)'),
    # uid as printed (%d: a process of uid 4294967294 shows -2 here)
    'summary_task': re.compile(r',\s*task=(.*),\s*pid=(\d+),\s*uid=(-?\d+)(?![\d,])'),
    # the kernel prints one space before the pid and the name; hand-aligned pastes have more, a
    # retyped line none before the name ("Kill process 22667(mongod) score 238")
    'selection': re.compile(r'[Kk]ill process +(?P<pid>\d+) *\((?P<name>.*?)\) score '),
    'kill': re.compile(r'[Kk]illed process +(?P<pid>\d+)(?:, UID (?P<uid>\d+),)? *'
                       r'\((?P<name>.*?)\)(?=,? (?:UID|total-vm|vsz)|\.?\s*$)'),
    'kill_loose': re.compile(r'[Kk]illed process +(?P<pid>\d+)(?:, UID (?P<uid>\d+),)? *\((?P<name>[^)]*)\)'),
    # a message that starts as a kill line, whatever its case (see _Lines.feed)
    'kill_start': re.compile(r'[Kk]ill(?:ed)? process +\d'),
    # the name cut off, or left out by whoever shortened the line ("Killed process 5 total-vm:...")
    'kill_pid_only': re.compile(r'[Kk]illed process +(?P<pid>\d+)(?:, UID (?P<uid>\d+),)? +(?:\(|(?=total-vm:|vsz:))'),
    # sizes as the kernel prints them; also as a poster retyped them ("total-vm: 977148kb")
    'total_vm': re.compile(r'(?:total-vm|vsz): ?(\d+)[kK][bB]'),
    'anon_rss': re.compile(r'anon-rss: ?(\d+)[kK][bB]'),
    'file_rss': re.compile(r'file-rss: ?(\d+)[kK][bB]'),
    'shmem_rss': re.compile(r'shmem-rss: ?(\d+)[kK][bB]'),
    'uid_colon': re.compile(r'UID:(\d+)(?!\d)'),
    'uid_rhel7': re.compile(r'^, UID (\d+),'),
    'pgtables': re.compile(r'pgtables: ?(\d+)[kK][bB]'),
    'score_adj_colon': re.compile(r'oom_score_adj:(-?\d+)(?!\d)'),
    'reaper': re.compile(r'oom_reaper: reaped process (\d+) \('),
    'reaper_failed': re.compile(r'oom_reaper: unable to reap pid:(\d+)'),
    'exiting': re.compile(r'OOM victim (\d+) \((.*?)\) is already exiting'),
    'group': re.compile(r'Tasks in (.+?) are going to be killed due to memory\.oom\.group set'),
    'task_in': re.compile(r'Task in (?P<task>.+) killed as a result of limit of (?P<limit>.+?)\s*$'),
    'task_in_piece': re.compile(r'Task in (/\S*)$'),
    'task_header': re.compile(r'\[\s*pid\s*\]\s+(.*\bname)\s*$'),
    'task_row': re.compile(r'\[\s*(\d+)\]\s+(-?\d+\s.*)$'),
    'meminfo_pairs': re.compile(r'(?:^|\s)[a-z_]+:\d+(?:\s+[a-z_]+:\d+)*\s*$'),
    'pair': re.compile(r'([a-z_]+):(\d+)'),
    'meminfo_total': re.compile(r'(?:(Free swap|Total swap)\s+=\s+(\d+)kB|(\d+) (pages RAM|pages reserved|total pagecache pages))\s*$'),
    'memcg_usage': re.compile(r'(memory|memory\+swap|kmem|swap|kmem\.tcp|tcpmem): usage (\d+)kB, limit (\d+)kB, failcnt (\d+)'),
    'memcg_stats_head': re.compile(r'Memory cgroup stats for (.*?):(.*)$'),
    'memcg_stat_kb': re.compile(r'([a-z_]+):(\d+)KB'),
    'memcg_stat_line': re.compile(r'(?:^|\s)([a-z_]+) (\d+)\s*$'),
}

_MEMINFO_TOTAL_KEYS = {'Free swap': 'free_swap_kb', 'Total swap': 'total_swap_kb', 'pages RAM': 'pages_ram',
                       'pages reserved': 'pages_reserved', 'total pagecache pages': 'total_pagecache_pages'}
_DIGITS_TO_ZERO = dict((ord(c), u'0') for c in u'123456789')


# --- time: the one place that turns written times into epoch seconds ---------------------------

def tz_offset(text):
    """Seconds east of UTC of 'Z', '+02:00', '-0530' (ValueError when out of range)."""
    if not text or text in ('Z', ' UTC'):
        return 0
    digits = text[1:].replace(':', '')
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError('time zone offset %s is out of range' % text)
    offset = hours * 3600 + minutes * 60
    return -offset if text[0] == '-' else offset


def to_epoch(year, month, day, hour=0, minute=0, second=0, tz=None, local=False):
    """Epoch seconds of a wall-clock time: in UTC shifted by `tz` ('Z', '+02:00'), or in the local
    time zone when `local` (a syslog or dmesg -T stamp).  ValueError for a date not in the calendar."""
    fields = (int(year), int(month), int(day), int(hour), int(minute), int(second))
    if not (1 <= fields[1] <= 12 and 1 <= fields[2] <= 31 and fields[3] <= 23 and fields[4] <= 59 and fields[5] <= 60):
        raise ValueError('%04d-%02d-%02d %02d:%02d:%02d is not a time in the calendar' % fields)
    if local:
        return float(time.mktime(fields + (0, 0, -1)))
    return float(calendar.timegm(fields + (0, 0, 0)) - tz_offset(tz))


def iso_utc(epoch, fraction=True):
    """ISO-8601 UTC text of epoch seconds; microseconds only when the log printed sub-second precision."""
    whole = int(epoch // 1)
    text = time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))
    if fraction:
        text += '.%06d' % int(round((epoch - whole) * 1000000) % 1000000)
    return text + 'Z'


def format_event(event, label=None):
    """The documented fact of one event value: ISO `time`, `source` as '<label>:<line>'.

    label: where it was read; None takes the value's own 'label' (set by oom_sources).
    """
    out = dict(event)
    label = out.pop('label', None) if label is None else label
    out.pop('label', None)
    epoch = out.pop('epoch')
    fraction = out.pop('fraction')
    out['time'] = iso_utc(epoch, fraction) if epoch is not None else None
    out['source'] = '%s:%d' % (label, out.pop('line'))
    victim = out['victim']
    out['reaped'] = bool(victim and victim.get('reaped'))
    return out


def facts(events, label):
    """The documented facts (``format_event``) of the event values read from the source ``label``."""
    return (format_event(event, label) for event in events)


def _int(match, group=1):
    return int(match.group(group)) if match else None


def _drop_elision(msg):
    """Lines cut by an editor or a relay end in '...', lines a pager chopped at the screen's edge
    (journalctl's less -S) in '>': the last token is partial, so drop it.  A '>' that closes a
    '<...>' of its own word (a call trace's "</TASK>") is the kernel's."""
    if msg.endswith('...') or msg.endswith(u'\u2026'):
        msg = msg.rstrip(u'.\u2026')
    elif msg.endswith('>') and '<' not in msg[max(msg.rfind(' '), msg.rfind(',')) + 1:]:
        msg = msg[:-1]
    else:
        return msg
    cut = max(msg.rfind(' '), msg.rfind(','))
    return msg[:cut] if cut > 0 else ''


def _uptime_gap(stamp_a, stamp_b):
    """Seconds between two stamps by the kernel's own uptime, or None when one of them has none."""
    a = stamp_a.uptime if stamp_a is not None else None
    b = stamp_b.uptime if stamp_b is not None else None
    return abs(a - b) if a is not None and b is not None else None


def _same_record(stamp_a, stamp_b):
    """True when the kernel stamped both the same, to the microsecond (one line pasted twice)."""
    gap = _uptime_gap(stamp_a, stamp_b)
    return gap is not None and gap < 1e-6


def _apart(stamp_a, stamp_b):
    """True when the kernel's stamps say the two lines are not of one dump."""
    gap = _uptime_gap(stamp_a, stamp_b)
    return gap is not None and gap > _SAME_DUMP_SECONDS


def _stamped_just_before(stamp, first):
    """True when the kernel stamped a line at most _SAME_DUMP_SECONDS before `first` (the stamp of an
    event's first line), on the same host where both name theirs: a line of that dump shown later."""
    if stamp is None or first is None or stamp.uptime is None or first.uptime is None:
        return False
    if stamp.host is not None and first.host is not None and stamp.host != first.host:
        return False
    return 0 < first.uptime - stamp.uptime <= _SAME_DUMP_SECONDS


def _stamp_key(stamp):
    """What of a line's stamp tells two records apart: the kernel's uptime, else the stamp's text."""
    if stamp is None:
        return None
    if stamp.uptime is not None:
        return stamp.uptime
    return stamp.match.group(0) if stamp.match is not None else None


def _trigger_name(pre):
    """The process name just before ' invoked oom-killer', out of whatever prefix precedes it."""
    seps = ('] ', ': ', '| ', '" ', '\t', 'MESSAGE=', ': "', ':"', '="')     # the last three open a quoted value
    cut = max([pre.rfind(sep) + len(sep) for sep in seps if sep in pre] or [0])
    bracket = pre.rfind(']') + 1
    if cut < bracket < len(pre.rstrip()) and '[' not in pre[bracket:]:
        cut = bracket       # a prefix glued to the name ("[63651.040008s][pid:2912,cpu3,sh]sh")
    if ';' in pre:
        cut = max([cut] + [m.end() for m in _P['kmsg_any'].finditer(pre)])
    name = pre[cut:].strip()
    if name[:1] in ('"', "'", '`') and name[:1] not in name[1:]:
        name = name[1:]     # the opening quote of a string or of Markdown code the line was put in
    if name[:1] == '<' and name[2:3] == '>' and name[1:2].isdigit():
        # a printk level marker that another CPU's line left in the middle of this one ("<4>cc1")
        name = name[3:]
    if len(name) > _COMM_LEN and ' ' in name:
        name = name.rsplit(' ', 1)[1]
    return name or None


# --- stamps ----------------------------------------------------------------------------------

class _Stamp(object):
    """The raw time stamp of a line; turned into epoch seconds only when an event needs it."""
    __slots__ = ('kind', 'match', 'uptime', 'host', 'epoch', 'fraction', 'boot')

    def __init__(self, kind, match=None, uptime=None, host=None):
        self.kind = kind
        self.match = match
        self.uptime = uptime
        self.host = host
        self.epoch = None
        self.fraction = False
        self.boot = None


def _stamp_in(prefix):
    """A stamp read from a prefix of no known shape: the first time stamp written anywhere in it."""
    up = _P['uptime_any'].search(prefix)
    uptime = float(up.group(1)) if up else None
    if up is None:
        up = _P['kmsg_any'].search(prefix)
        uptime = int(up.group(1)) / 1000000.0 if up else None
    for kind in ('iso', 'ctime', 'syslog', 'local'):
        m = _P[kind + '_any'].search(prefix)
        if m and (kind != 'local' or _month(m.group(1))):
            host = _P['host_after'].match(prefix, m.end())
            return _Stamp(kind, m, uptime=uptime, host=host.group(1) if host else None)
    return _Stamp('uptime', uptime=uptime) if up else None


class _Clock(object):
    """Epoch seconds of stamps: the year of syslog stamps and the boot time of uptimes."""

    def __init__(self, year, boot_time, ref_time):
        if ref_time is None and year is None:
            ref_time = time.time()
        self.year = time.localtime(ref_time).tm_year if year is None else year
        self.ref_time = ref_time
        self.boot_time = boot_time

    def fill(self, stamp):
        if stamp.epoch is not None or stamp.kind is None:
            return
        try:
            self._fill(stamp)
        except (ValueError, OverflowError):
            stamp.epoch = None      # a stamp that is no date leaves the time unknown

    def _fill(self, stamp):
        m = stamp.match
        if stamp.kind == 'uptime':
            if self.boot_time is not None and stamp.uptime is not None:
                stamp.epoch = self.boot_time + stamp.uptime
                stamp.fraction = True
        elif stamp.kind == 'unix':
            stamp.epoch = float(m.group(1))
            stamp.fraction = '.' in m.group(1)
        elif stamp.kind == 'ctime':
            # dmesg -T and logread print the local time of the host they ran on
            stamp.epoch = to_epoch(m.group(6), _MONTHS[m.group(1)], m.group(2), m.group(3), m.group(4), m.group(5),
                                   local=True)
        elif stamp.kind in ('syslog', 'local'):
            fields = (_month(m.group(1)), m.group(2), m.group(3), m.group(4), m.group(5))
            written = m.group(7) if stamp.kind == 'local' else None
            epoch = to_epoch(int(written) if written else self.year, *fields, local=True)
            # no year in the line: a date after the file's mtime is from the year before
            if not written and self.ref_time is not None and epoch > self.ref_time + 86400:
                epoch = to_epoch(self.year - 1, *fields, local=True)
            if m.group(6):
                epoch += float(m.group(6))
                stamp.fraction = True
            stamp.epoch = epoch
        elif stamp.kind == 'iso':
            fields = [m.group(k) for k in range(1, 7)]
            stamp.epoch = to_epoch(*fields, tz=m.group(8), local=not m.group(8))
            if m.group(7):
                stamp.epoch += float(m.group(7).replace(',', '.'))
                stamp.fraction = True


# --- the transport layer ------------------------------------------------------------------------

# A terminal that wrapped a long line at its width and a copy that turned each break into spaces up
# to a wider window: "...anon-rss:830480k<117 spaces>B, file-rss..."
_PAD = ' ' * 32


def _unpad(line):
    """The line without the padding runs that start at a multiple of _TERMINAL_WIDTH columns."""
    at = 0
    while True:
        start = line.find(_PAD, at)
        if start < 0:
            return line
        end = start + len(_PAD)
        while end < len(line) and line[end] == ' ':
            end += 1
        edge = -(-start // _TERMINAL_WIDTH) * _TERMINAL_WIDTH     # the first row end at or after start
        if end >= len(line) or edge >= end:
            at = end
            continue
        line = line[:edge] + line[end:]     # the row's own trailing blanks (before the edge) stay
        at = edge


# A mail kept in its quoted-printable transfer encoding: '=' of a kernel field written '=3D'.
_QP_SIGN = re.compile(r'gfp_mask=3D0x|constraint=3DCONSTRAINT_|order=3D\d|oom_score_adj=3D-?\d')


def _oom_memcg_path(path, task_path):
    """The OOM cgroup's path (oom_memcg=, "limit of") as printed; one with a space in it only when
    task_path, the victim's cgroup (task_memcg=, "Task in"), proves it.

    The victim's cgroup is the OOM cgroup itself or a cgroup under it.  A space in the OOM cgroup's
    path is most often a wrap that a join turned into one ("...pod-907" / "c-b2ec..."): without the
    space, the path task_path starts with is the value; with it (a cgroup named with a space), the
    path as printed.  Nothing to prove it by: None, not a guess.
    """
    if ' ' not in path:
        return path
    if task_path is not None:
        for candidate in (path, path.replace(' ', '')):
            if task_path == candidate or task_path.startswith(candidate.rstrip('/') + '/'):
                return candidate
    return None


def _glued_records(line):
    """Offsets where a dmesg record starts glued to the text before it (see _P['glued_uptime'])."""
    return [m.start() for m in _P['glued_uptime'].finditer(line, 1)
            if line[m.start() - 1].isalnum() or line[m.start() - 1] == '_']


def _cut_in_name(head, text):
    """True when `text` goes on with the field name that `head` ends in: a line cut inside the name
    ("...,task_m" + "emcg=/x,...", "..., file-rss" + ":536kB, ...", "...,oom" + "_memcg=/x").

    The name must end in `text` (its ':' or '=' is there), so a whole field ("oom_score_adj:0") does not count.
    """
    if text[:1] in ('', ' ', '\t'):
        return False
    tail = head[max(head.rfind(','), head.rfind(' ')) + 1:]
    if not tail:
        return False
    m = _FIELD_START.match(tail + text[:24])
    return m is not None and m.end() > len(tail)


def _qp_decode(text):
    """A quoted-printable line decoded (=3D is '=', =E2=80=A6 an ellipsis)."""
    if '=' not in text:
        return text
    return quopri.decodestring(text.encode('utf-8')).decode('utf-8', 'replace')


# a line held back in case the next one is its wrapped rest
_Pending = collections.namedtuple('_Pending', 'lineno msg stamp raw_len prefixed')


class _Lines(object):
    """Lines to kernel messages: prefixes stripped, JSON decoded, wrapped lines joined."""

    def __init__(self, messages):
        self.messages = messages
        self.pending = None
        self.kmsg_seen = False
        self.shape = None           # digits-as-zero form of a prefix of no known shape, once seen
        self.quoted = False         # the last line split was mail-quoted ('> ')
        self.entry = None           # header line of the journalctl -o verbose entry being read
        self.qp = False             # the text is a quoted-printable mail (see _QP_SIGN)
        self.qp_head = None         # (line number, text) of a line that ended in a soft break ('=')

    @property
    def wants_all(self):
        return self.pending is not None or self.qp_head is not None or self.messages.wants_all

    def _quoted_printable(self, lineno, line):
        """(line number, line) decoded, the two parts of a soft-broken line joined; None while a part is missing.

        Only a line that shows the encoding ('=3D', a soft break) or continues a soft-broken one is
        decoded: a plain line after the mail ("pid=12,") keeps its text.
        """
        soft = line.endswith('=')
        if soft or '=3D' in line or self.qp_head is not None:
            line = _qp_decode(line[:-1] if soft else line)
        if self.qp_head is not None:
            lineno, line = self.qp_head[0], self.qp_head[1] + line
            self.qp_head = None
        if soft:
            self.qp_head = (lineno, line)
            return None
        return lineno, line

    def head(self, line):
        """Keep a journalctl -o verbose entry header (its time is the MESSAGE= line's); True if it is one."""
        if '[s=' in line and _P['entry_head'].match(line):
            self.entry = line
            return True
        return False

    def feed(self, lineno, line):
        """Consume one line (str, no newline); return a list of finished events (usually empty)."""
        if self.head(line):
            return []
        if _PAD in line:
            line = _unpad(line)
        if line[:1] == '{':
            done = self._flush()
            return done + self._json(lineno, line)
        if '[' in line:
            cuts = _glued_records(line)
            if cuts:
                # records that lost the newlines between them: each is a line of its own (and holds
                # no glued record but at its start, so this goes one call deep)
                done = []
                for start, end in zip([0] + cuts, cuts + [len(line)]):
                    done.extend(self.feed(lineno, line[start:end]))
                return done
        if self.qp or ('=3D' in line and _QP_SIGN.search(line)):
            self.qp = True
            got = self._quoted_printable(lineno, line)
            if got is None:
                return []
            lineno, line = got
        msg, stamp, prefixed = self._split(line)
        if msg is None:
            return []
        if self.kmsg_seen and '\\x0a' in msg:
            done = self._flush()
            for part in msg.split('\\x0a'):
                done.extend(self.messages.feed(lineno, part, stamp, prefixed))
            return done
        pending = self.pending
        if pending is not None and self._continues(pending, msg, prefixed):
            self.pending = pending._replace(msg=self._join(pending, msg, self.quoted), raw_len=len(line))
            return []
        done = self._flush()
        if self.messages.wants_all or any(n in msg for n in _NEEDLE_TEXT) or _LIMIT_OF in msg or \
                _GROUP in msg or msg.endswith(' invoked') or 'oom_reaper:' in msg or (
                # a kill line cut out of a line the scan looked at (it held a needle, or the line before
                # was held), whatever the case of its words: OpenVZ's "Out of memory in UB 101: OOM
                # killed process 5 (x) score 0 vm:...", whole or wrapped after "OOM"
                _P['kill_start'].match(msg) and (pending is not None or any(n in line for n in _NEEDLE_TEXT))):
            # held one line: the next may be the rest of it
            self.pending = _Pending(lineno, msg, stamp, len(line), prefixed)
        return done

    def finish(self):
        done = []
        if self.qp_head is not None:
            # the last line ended in a soft break: the rest never came
            lineno, line = self.qp_head
            self.qp_head, self.qp = None, False
            done = self.feed(lineno, line)
        return done + self._flush() + self.messages.finish()

    def _flush(self):
        pending = self.pending
        if pending is None:
            return []
        self.pending = None
        return self.messages.feed(pending.lineno, pending.msg, pending.stamp, pending.prefixed)

    @staticmethod
    def _continues(pending, msg, prefixed):
        """True when `msg` is the rest of the pending line, cut by a mail client or a terminal."""
        if prefixed:
            return False        # a line with a prefix of its own is a record of its own
        if len(pending.msg) + len(msg) > _MESSAGE_MAX:
            return False        # no kernel message is this long: text pasted after it
        if pending.msg.endswith('\\') and msg.strip():
            return True         # a line its poster continued with a backslash, as in a shell
        text = msg.lstrip()
        if text.startswith('oom-killer:') and pending.msg.rstrip().endswith(' invoked'):
            return True         # a header a mailer broke right after "invoked"
        if not text or text[:3] == '```' or _ANCHOR.search(msg):
            return False        # (a Markdown code fence closes the paste; it continues nothing)
        if _cut_in_name(pending.msg, msg) and (
                'oom-kill:' in pending.msg or 'oom-killer: gfp_mask=' in pending.msg or
                _P['kill_start'].search(pending.msg) is not None):
            return True         # a kernel line cut inside a field's name, at any width
        if pending.raw_len < _WRAP_MIN:
            # a short line is whole, unless a mailer broke it early before a long word: a header cut
            # right after "invoked oom-killer:" with its gfp_mask on the next line, a kill line cut
            # after a field's comma with the next field on the next line, a header or kill line cut
            # before its next field or its flags ("(GFP_KERNEL|...)", "total-vm:...")
            head = pending.msg.rstrip()
            if head.endswith('oom-killer:') and text.startswith('gfp_mask='):
                return True
            if _FIELD_START.match(text) is None and not (text[:1] == '(' and 'oom-killer: gfp_mask=' in head):
                return False
            return head.endswith(',') or 'oom-killer: gfp_mask=' in head or _P['kill_start'].search(head) is not None
        return pending.prefixed or _CONT.match(text) is not None

    @staticmethod
    def _join(pending, msg, quoted):
        head = pending.msg
        if head.endswith('\\'):
            return head[:-1] + msg.lstrip()
        if _cut_in_name(head, msg):
            return head + msg
        if pending.raw_len == _TERMINAL_WIDTH and not quoted and head[-1:] != ' ' and msg[:1] != ' ':
            return head + msg       # a terminal cuts at its width, words or not; a mailer at a space
        text = msg.lstrip()
        if text[:1] == ',':
            return head.rstrip() + text
        return head.rstrip() + ' ' + text

    def _split(self, line):
        """(message, stamp, prefixed) of one line; message None for a line that is no kernel message."""
        self.quoted = line[:1] == '>'
        if line[:1] and line[:1] in ' \t>':
            if self.kmsg_seen and line[:1] == ' ':
                # /dev/kmsg dictionary lines (" SUBSYSTEM=...") carry no message
                stripped = line.lstrip()
                eq = stripped.find('=')
                if eq > 0 and stripped[:eq].isupper():
                    return None, None, False
            line = line[_P['quote'].match(line).end():]
        msg, stamp, prog = self._known(line)
        if stamp is not None and prog in (None, 'kernel') and not any(n in msg for n in _NEEDLE_TEXT):
            # a clean kernel line of a known prefix: the message starts right here
            return msg, stamp, True
        anchor = _ANCHOR.search(msg)
        if prog is not None and prog != 'kernel':
            # another program's line counts only when it quotes a kernel line, prefix and all
            if anchor is None or not ('kernel' in msg[:anchor.start()] or _P['uptime_any'].search(msg, 0, anchor.start())):
                return None, None, False
        prefixed = stamp is not None
        if anchor is not None and anchor.start() > 0:
            start = anchor.start()
            if msg[start] == ' ':       # " invoked oom-killer": the process name comes before it
                head = msg[:start].rstrip()
                name = _trigger_name(head)
                start = len(head) - len(name) if name else start + 1
            pre = msg[:start]
            if stamp is None and msg.startswith(('Kernel panic', 'Out of memory and'), start) \
                    and _P['prose_quote'].search(pre):
                # a post that tells of a panic or of nothing left to kill, quoting the kernel's words,
                # is no log of one (a kill line quoted so is taken: it names what the kernel killed)
                return None, None, False
            if pre.strip():
                tag = _P['prog_tag'].search(pre)
                if tag and tag.group(1) != 'kernel' and 'kernel' not in pre:
                    return None, None, False    # another program's own words, not a kernel line
                if stamp is None or prog != 'kernel':
                    stamp = _stamp_in(pre) or stamp
                if stamp is None and pre.strip() == 'MESSAGE=':
                    stamp = self._entry_stamp()
                if msg[anchor.start()] != ' ' and not prefixed:
                    self.shape = line[:len(line) - len(msg) + start].translate(_DIGITS_TO_ZERO)
                prefixed = True
                msg = msg[start:]
                if '"' in pre:
                    # a kernel line quoted in a JSON string ("textPayload": "[12.3] ... oom_score_adj=0\r\n",)
                    msg = _P['json_tail'].sub('', msg)
        elif not prefixed and self.shape is not None:
            width = len(self.shape)
            if line[:width].translate(_DIGITS_TO_ZERO) == self.shape:
                msg, prefixed = line[width:], True
        return msg, stamp, prefixed

    def _entry_stamp(self):
        """The time in the header of the verbose entry this MESSAGE= line ends (each header serves once)."""
        entry, self.entry = self.entry, None
        return _stamp_in(entry) if entry else None

    def _known(self, line):
        """(message, stamp, program) after a prefix of a known shape at the start of the line."""
        first = line[:1]
        if first == '[':
            m = _P['dmesg'].match(line)
            if m:
                msg = line[m.end():]
                h = _P['mono_host'].match(msg)
                if h:
                    msg = msg[h.end():]
                return msg, _Stamp('uptime', uptime=float(m.group(1))), None
            m = _P['ctime_any'].match(line, 1)
            if m and line[m.end():m.end() + 1] == ']':
                return line[m.end() + 1:].lstrip(' '), _Stamp('ctime', m), None
            return line, None, None
        if first.isdigit():
            m = _P['kmsg'].match(line)
            if m:
                self.kmsg_seen = True
                return line[m.end():], _Stamp('uptime', uptime=int(m.group(1)) / 1000000.0), None
            m = _P['iso'].match(line) or _P['unix'].match(line)
            if m:
                return self._after_prog(line, m, 'iso' if m.re is _P['iso'] else 'unix')
            return line, None, None
        m = _P['syslog'].match(line) if first.isupper() else None
        if m:
            return self._after_prog(line, m, 'syslog')
        return line, None, None

    @staticmethod
    def _after_prog(line, m, kind):
        if m.group('prog') == 'oom-killer':
            # 2.6.x's header names no task ("oom-killer: gfp_mask=0xd0"); a syslog that keeps no
            # "kernel:" tag took its first word for a program's name
            return line[m.start('prog'):], _Stamp(kind, m, host=m.group('host')), None
        end = m.end()
        a = _P['after_prog'].match(line, end)
        uptime = a.group(1)
        stamp = _Stamp(kind, m, uptime=float(uptime) if uptime else None, host=m.group('host'))
        return line[a.end():], stamp, m.group('prog')

    def _json(self, lineno, line):
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        if not isinstance(rec, dict):
            # a JSON log's record cut short: a record all the same, as are the strings below
            msg, stamp, _prefixed = self._split(line)
            return self.messages.feed(lineno, msg, stamp) if msg is not None else []
        if 'MESSAGE' not in rec:
            # an event of another tool (node-problem-detector, an event exporter) quoting the kernel
            out = []
            for text in _strings(rec):
                for part in text.split('\n'):
                    msg, stamp, _prefixed = self._split(part)
                    if msg is not None and _ANCHOR.search(msg):
                        out.extend(self.messages.feed(lineno, msg, stamp))
            return out + self._flush()
        return self._journal_record(lineno, rec)

    def _journal_record(self, lineno, rec):
        if rec.get('_TRANSPORT') not in (None, 'kernel') or rec.get('SYSLOG_IDENTIFIER') not in (None, 'kernel'):
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
        boot = rec.get('_BOOT_ID')
        stamp.boot = boot if isinstance(boot, str) else None
        try:
            if rec.get('__REALTIME_TIMESTAMP'):
                stamp.epoch = int(rec['__REALTIME_TIMESTAMP']) / 1000000.0
                stamp.fraction = True
            mono = rec.get('_SOURCE_MONOTONIC_TIMESTAMP') or rec.get('__MONOTONIC_TIMESTAMP')
            if mono:
                stamp.uptime = int(mono) / 1000000.0
        except (TypeError, ValueError):
            pass
        out = []
        for part in text.split('\n'):
            out.extend(self.messages.feed(lineno, part, stamp))
        return out


def _strings(value):
    """The strings inside a decoded JSON value that hold kernel OOM text."""
    if isinstance(value, str):
        if any(n in value for n in _NEEDLE_TEXT) or 'oom_reaper' in value:
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


# --- the state machine over kernel messages ------------------------------------------------------

# What an event knows before any of its lines said more (victims gets a list of its own).
_EVENT_START = (
    ('trigger', None), ('trigger_pid_seen', False), ('victim', None), ('constraint', None), ('oom_memcg', None),
    ('task_memcg', None), ('summary_task', None), ('memcg_hint', False), ('global_hint', False), ('scope_hint', None),
    ('no_killable', False), ('panic', False), ('summary_seen', False), ('selection_seen', 0), ('exiting', None),
    ('group', None), ('tasks', None), ('task_cols', None), ('meminfo', None), ('memcg_stats', None),
    ('task_in_pieces', None),
    # opened by a bare "NAME invoked oom-killer" line without a kernel prefix, or by cgroup v1's
    # "Task in X killed as a result of limit of Y" without a header: an event only when more of a
    # report follows it (see _Messages._close)
    ('tentative', False),
    # which multi-line block the next continuation line belongs to: None, 'meminfo', 'stats'
    ('block', None),
)


class _Event(object):
    __slots__ = ('lineno', 'stamp', 'victims') + tuple(name for name, _value in _EVENT_START)

    def __init__(self, lineno, stamp):
        self.lineno = lineno
        self.stamp = stamp
        self.victims = []
        for name, value in _EVENT_START:
            setattr(self, name, value)


def _outcome_seen(ev):
    """True once a line of ev says what the invocation did: `oom-kill:`, selection, no-killable, panic, exiting."""
    return bool(ev.summary_seen or ev.selection_seen or ev.no_killable or ev.panic or ev.exiting)


def _unconfirmed(ev):
    """True for a tentative event (see _Event.tentative) that nothing of a report has joined yet."""
    return ev.tentative and ev.victim is None and not (_outcome_seen(ev) or ev.trigger_pid_seen)


class _Messages(object):
    """State machine over kernel messages; see the module docstring for the event rules."""

    def __init__(self, clock, details=()):
        self.clock = clock
        self.details = frozenset(d for d in details if d in DETAILS)
        self.event = None
        self.in_report = False
        self.report_lines = 0
        self.tail = 0
        # victims of recent events by pid, for an oom_reaper line that comes late
        self.recent = {}
        # (line number, cgroup) of a memory.oom.group line that came before any kill of its
        # invocation (an excerpt cut right before it, or lines put in another order): the kill on
        # the very next line starts that group's event
        self.group_next = None
        # (pid, name, sizes, stamp) of the last kill line: the same again is the same kill pasted twice
        self.last_kill = None
        # the same keys of kill lines without a stamp since the last header: with no header between
        # them, the same pid, name and sizes again is one kill quoted twice
        self.bare_kills = set()
        # (pid, reaped, line number) of an oom_reaper line that named no victim seen yet: lines
        # pasted newest first show it just before its kill line
        self.reaped_early = None
        self.lineno = 0

    @property
    def wants_all(self):
        return self.in_report or self.tail > 0

    def finish(self):
        """End of input: return the open event, if any."""
        done = self._close()
        return [done] if done else []

    def _joins(self, ev, stamp, *taken):
        """True when a line that would open an event belongs to the open one, ev.

        There must be an open event, it must not have any of the parts named in `taken` yet (the
        attributes of _Event this line would set: a second kill line is a second kill), and the line
        must not be stamped well before ev's header: by the kernel's uptime where both lines show
        it, else by their wall-clock time.  Nothing of a report is printed before its header, so
        such a line is another machine's, another boot's or another day's log pasted after it (a
        small step back is lines pasted newest first).  An event opened by another line (an
        `oom-kill:` line, a selection) is left to the order of the lines.
        """
        if ev is None or any(getattr(ev, part) for part in taken):
            return False
        if ev.trigger is None or ev.stamp is None or stamp is None:
            return True
        if ev.stamp.uptime is not None and stamp.uptime is not None:
            return stamp.uptime >= ev.stamp.uptime - _SAME_DUMP_SECONDS
        self.clock.fill(ev.stamp)
        self.clock.fill(stamp)
        if ev.stamp.epoch is not None and stamp.epoch is not None:
            return stamp.epoch >= ev.stamp.epoch - _SAME_DUMP_SECONDS
        return True

    def _open(self, lineno, stamp, out):
        done = self._close()
        if done:
            out.append(done)
        self.event = ev = _Event(lineno, stamp)
        return ev

    def _close(self):
        ev = self.event
        self.event = None
        self.in_report = False
        self.tail = 0
        if ev is None:
            return None
        if _unconfirmed(ev):
            return None         # a bare "X invoked oom-killer" or a "Task in" line that no report followed
        return self._value(ev)

    def _report(self):
        self.in_report = True
        self.report_lines = 0

    def feed(self, lineno, msg, stamp, prefixed=True):
        """One kernel message (prefix already stripped).  Returns finished events.

        prefixed: the message came with a kernel prefix (a stamp, a 'kernel:' tag, the shape of one
        seen before, a journal record) rather than as bare text that prose could also be.
        """
        out = []
        self.lineno = lineno
        if self.tail > 0:
            self.tail -= 1
            if self.tail == 0 and not self.in_report:
                # the report is over: a later kill line is another invocation
                done = self._close()
                if done:
                    out.append(done)
        if self.in_report:
            self.report_lines += 1
            ev = self.event
            if self.report_lines > (_TENTATIVE_LINES if ev is not None and _unconfirmed(ev) else _MAX_REPORT_LINES):
                done = self._close()
                if done:
                    out.append(done)
        msg = _drop_elision(msg.rstrip('\r\n'))
        first = msg.find('illed process ')
        if first >= 0:
            second = msg.find('illed process ', first + 1)
            if second > 0:
                # kill lines run into one (a console without line locking): each is a kill, and each
                # piece holds one, so this goes one call deep however many a line holds
                cuts = [0]
                while second > 0:
                    cuts.append(second - 1)
                    second = msg.find('illed process ', second + 1)
                for start, end in zip(cuts, cuts[1:] + [len(msg)]):
                    out += self.feed(lineno, msg[start:end], stamp, prefixed)
                return out
        if 'oom-kill' in msg:
            if self._oom_kill(lineno, msg, stamp, out, prefixed):
                return out
        if 'ill' in msg and ('Kill' in msg or 'kill process' in msg or 'killed process' in msg):
            if self._kill_line(lineno, msg, stamp, out):
                return out
        if 'of memory' in msg or 'panic' in msg or 'already exiting' in msg:
            if self._no_kill(lineno, msg, stamp, out):
                return out
        ev = self.event
        if _GROUP in msg and (ev is None or ev.victim is None or not self.wants_all):
            m = _P['group'].search(msg)
            if m:
                if ev is not None and ev.victim is None and self.wants_all:
                    ev.group = m.group(1)
                else:
                    self.group_next = (lineno, m.group(1))
                return out
        if _LIMIT_OF in msg and (ev is None or not self.wants_all or ev.victim is not None) \
                and _P['task_in'].search(msg):
            # outside a report, or after its kill line: the next invocation's, whose header the excerpt
            # lacks (`dmesg | grep -i kill`, or a paste that starts here); its event only when a
            # selection or kill follows, past the cgroup's usage, stats and task table
            ev = self._open(lineno, stamp, out)
            ev.tentative = True
            self._task_in(ev, msg)
            self._report()
        elif ev is not None:
            if 'oom_reaper:' in msg:
                self._reaper(msg)
            elif self.wants_all:
                self._report_line(ev, msg, stamp)
        elif 'oom_reaper:' in msg:
            self._reaper(msg)
        return out

    def _oom_kill(self, lineno, msg, stamp, out, prefixed):
        m = _P['header'].search(msg) or _P['header_old'].search(msg)
        if m:
            ev = self.event
            if ev is not None and ev.victim is None and ev.trigger is not None \
                    and ev.trigger['gfp_mask'] == m.group('gfp') and (_same_record(ev.stamp, stamp) or (
                        (ev.stamp is None) != (stamp is None) and ev.trigger['name'] == _trigger_name(msg[:m.start()])
                        and not _outcome_seen(ev))):
                # the same header again, same kernel stamp: one report pasted twice (a summary, then in
                # full); or right after the same header without a stamp (a record and its message)
                self._report()
                return True
            if ev is not None and ev.trigger is None and _stamped_just_before(stamp, ev.stamp):
                # the header of the open event, shown after its outcome: a post that quotes the kill
                # and then "the lines right before it", or lines pasted newest first
                ev.stamp = stamp
                self._report()
                self._header(ev, msg, m)
                return True
            ev = self._open(lineno, stamp, out)
            self._report()
            self._header(ev, msg, m)
            self.bare_kills.clear()
            self.last_kill = None
            return True
        m = _P['header_bare'].match(msg)
        alone = m is not None and not prefixed and m.end() == len(msg.rstrip()) and ' ' not in m.group('name').strip()
        quoted = m is not None and stamp is None and not m.group('tag') and m.group('name')[:1] in '"\'`'
        if m and not quoted and (stamp is not None or m.group('tag') or prefixed or alone):
            # a header cut or elided after the name ("X invoked oom-killer", "... invoked oom-killer: ...
            # oom_score_adj=944"), with the kernel's stamp or tag: prose says it too.  Without them,
            # only a line that is nothing but a one-word name and the words, and only when more of a
            # report follows (a post's title says it too); never one quoted in a sentence ("for java
            # you see `java invoked oom-killer: ...`")
            ev = self._open(lineno, stamp, out)
            ev.tentative = alone and stamp is None and not m.group('tag')
            self._report()
            self.bare_kills.clear()
            self.last_kill = None
            ev.trigger = {'name': m.group('name').strip(), 'pid': None, 'gfp_mask': None,
                          'order': _int(_P['order'].search(msg, m.end())),
                          'oom_score_adj': _int(_P['score_adj_eq'].search(msg, m.end()))}
            return True
        m = _P['summary'].search(msg)
        if m:
            ev = self.event
            if ev is not None and ev.victim is not None and not ev.summary_seen and self._names_victim(ev, msg):
                # the kill line came first: lines pasted newest first (journalctl -r)
                self._summary(ev, msg[m.start():], m)
                return True
            if not self._joins(ev, stamp, 'summary_seen', 'victim', 'selection_seen', 'no_killable'):
                ev = self._open(lineno, stamp, out)
                self._report()
            self._summary(ev, msg[m.start():], m)
            return True
        return False

    @staticmethod
    def _names_victim(ev, msg):
        task = _P['summary_task'].search(msg)
        return task is not None and int(task.group(2)) == ev.victim['pid']

    def _kill_line(self, lineno, msg, stamp, out):
        if 'illed process' in msg:
            m = _P['kill'].search(msg) or _P['kill_loose'].search(msg) or _P['kill_pid_only'].search(msg)
            if not m:
                return True
            if msg[m.start()] == 'k' and msg[:m.start()].strip() not in ('', 'OOM') \
                    and not msg[:m.start()].endswith(' OOM ') and not _P['stamp_end'].search(msg, 0, m.start()):
                # lower case is OpenVZ's "OOM killed process", or a line retyped after another record
                # and its stamp; "would have killed process" kills nothing
                return False
            ev = self.event
            pid = int(m.group('pid'))
            if self._joins(ev, stamp) and ev.group is not None and ev.victim is not None:
                if all(v['pid'] != pid for v in ev.victims):
                    ev.victims.append(self._victim(ev, msg, m))
                self.tail = _TAIL_LINES
                return True
            fields = self._victim_fields(msg, m)
            key = (fields['pid'], fields['name'], fields['total_vm_kb'], fields['anon_rss_kb'], _stamp_key(stamp))
            last = self.last_kill
            if key[3] is None:
                again = False
            elif last is not None and key[:4] == last[:4] and (key[-1] == last[-1] or None in (key[-1], last[-1])):
                again = True        # the same line again, or the same record with and without its stamp
            else:
                again = key[-1] is None and key in self.bare_kills
            if key[3] is not None and key[-1] is None and len(self.bare_kills) < _MAX_BARE_KILLS:
                self.bare_kills.add(key)
            opened_by_selection = ev is not None and ev.victim is None and ev.trigger is None and not (
                ev.summary_seen or ev.no_killable or ev.exiting)
            if again and (ev is None or ev.victim is not None or opened_by_selection):
                # the same kill line, sizes and stamp: a post that quotes its log twice (without
                # sizes, an old kernel's second invocation on a victim still dying looks the same);
                # a selection line quoted with it opened nothing new either
                if ev is not None and ev.victim is None:
                    self.event = None
                    self.in_report = False
                self.tail = _TAIL_LINES if self.event is not None else 0
                return True
            self.last_kill = key
            if not self._joins(ev, stamp, 'victim', 'no_killable', 'exiting'):
                ev = self._open(lineno, stamp, out)
            ev.victim = self._victim(ev, msg, m, fields)
            ev.victims.append(ev.victim)
            if self.group_next is not None:
                if self.group_next[0] == lineno - 1:
                    ev.group = ev.group or self.group_next[1]
                self.group_next = None
            self._kind_from_message(ev, msg[:m.start()])
            self.in_report = False
            self.tail = _TAIL_LINES
            return True
        m = _P['selection'].search(msg)
        if m:
            ev = self.event
            pid = int(m.group('pid'))
            if ev is not None and ev.victim is None and ev.selection_seen == pid and ev.trigger is None \
                    and (ev.stamp is None) != (stamp is None):
                # the same selection again, once with a stamp and once without (a record and its
                # message); two bare ones are two invocations of an old kernel on a victim still dying
                return True
            if not self._joins(ev, stamp, 'selection_seen', 'victim'):
                ev = self._open(lineno, stamp, out)
            ev.selection_seen = pid
            self._kind_from_message(ev, msg[:m.start()])
            self._report()
            return True
        return False

    def _no_kill(self, lineno, msg, stamp, out):
        """"no killable processes", an OOM panic, "OOM victim N is already exiting"."""
        ev = self.event
        if 'no killable' in msg and 'Out of memory and no killable' in msg:
            if not self._joins(ev, stamp, 'victim', 'no_killable'):
                ev = self._open(lineno, stamp, out)
            ev.no_killable = True
            # before 4.19 (and on some vendor kernels) the kernel panics with this very message,
            # on a global OOM only: a memory cgroup's never panics
            if 'not syncing' in msg:
                ev.panic = ev.global_hint = True
        elif 'panic' in msg and 'not syncing' in msg and (
                'ut of memory' in msg or 'deadlocked on memory' in msg or 'no killable' in msg):
            if not self._joins(ev, stamp):
                ev = self._open(lineno, stamp, out)
            ev.panic = True
            if 'system-wide panic_on_oom' in msg or 'deadlocked on memory' in msg or 'no killable' in msg:
                # panic_on_oom=1 panics on a global OOM only (=2, "compulsory", on any), and so does an
                # OOM that found nothing to kill
                ev.global_hint = True
            if 'no killable' in msg:
                ev.no_killable = True
        elif 'already exiting' in msg:
            m = _P['exiting'].search(msg)
            if not m:
                return False
            if ev is not None and ev.group is not None:
                return True         # a member of a memory.oom.group kill that is dying already
            if not self._joins(ev, stamp, 'victim', 'exiting'):
                ev = self._open(lineno, stamp, out)
            ev.exiting = {'pid': int(m.group(1)), 'name': m.group(2).strip() or None}
            self._kind_from_message(ev, msg[:m.start()])
        else:
            return False
        self.in_report = False
        self.tail = _TAIL_LINES
        return True

    @staticmethod
    def _task_in(ev, text):
        m = _P['task_in'].search(text)
        if m:
            # a path with a space in it is a line cut inside the path and joined again, or text
            # after it (a comment of the file it was quoted in): not the path, so none; the limit's
            # path is the task's cgroup or one above it, which may prove where a cut was
            task = m.group('task')
            task = None if ' ' in task else task
            limit = _oom_memcg_path(m.group('limit'), task)
            ev.task_memcg = ev.task_memcg or task
            if limit == 'host':
                # Alibaba Cloud Linux names the whole machine's limit "host": a global OOM
                ev.global_hint = True
            else:
                ev.oom_memcg = ev.oom_memcg or limit
                ev.memcg_hint = True
        return m is not None

    def _task_in_pieces(self, ev, text):
        """cgroup v1's "Task in X killed as a result of limit of Y" printed in pieces, a line each.

        3.x to 4.18 print it with pr_cont; where each piece became a record of its own the report
        shows "Task in X", "killed as a result of limit of" and "Y" (or the last two on one line).
        """
        pieces = ev.task_in_pieces
        if pieces is None:
            m = _P['task_in_piece'].match(text)
            if m:
                ev.task_in_pieces = [m.group(1)]
                return True
            return False
        if len(pieces) == 1 and text.startswith(_LIMIT_OF):
            pieces.append(text[len(_LIMIT_OF):].strip())
        elif len(pieces) == 2 and not pieces[1] and text[:1] == '/' and ' ' not in text:
            pieces[1] = text
        else:
            ev.task_in_pieces = ()      # something else came between: not one message
            return False
        if pieces[1]:
            self._task_in(ev, 'Task in %s %s %s' % (pieces[0], _LIMIT_OF, pieces[1]))
            ev.task_in_pieces = ()
        return True

    def _reaper(self, msg):
        m = _P['reaper'].search(msg)
        failed = None if m else _P['reaper_failed'].search(msg)
        if not (m or failed):
            return
        pid = int((m or failed).group(1))
        victim = self.recent.get(pid)
        if victim is not None:
            victim['reaped'] = bool(m)
        else:
            self.reaped_early = (pid, bool(m), self.lineno)

    def _report_line(self, ev, msg, stamp=None):
        """A line inside a report (between header and kill, or shortly after the kill)."""
        text = msg.strip()
        if not text:
            return
        if text[0] == ',' and ev.summary_seen:
            # a piece of the oom-kill: summary printed after another CPU's message (pr_cont)
            self._summary_fields(ev, text)
            return
        if _GROUP in text:
            m = _P['group'].search(text)
            if m and ev.victim is not None:
                ev.group = m.group(1)
            return
        if not self.in_report:
            return
        if ev.block == 'stats' and ev.memcg_stats is not None:
            m = _P['memcg_stat_line'].search(text)
            if m:
                ev.memcg_stats['stats'][m.group(1)] = int(m.group(2))
                return
            ev.block = None
        if 'CPU:' in text or 'Pid:' in text or '(pid: ' in text:
            m = _P['cpu'].search(text)
            if m:
                if ev.trigger is not None and not ev.trigger_pid_seen and not _apart(ev.stamp, stamp):
                    ev.trigger['pid'] = int(m.group(1) or m.group(2) or m.group(3))
                    ev.trigger_pid_seen = True
                return
        if '[' in text and ']' in text and (_P['task_header'].search(text) or _P['task_row'].search(text)):
            self._task_line(ev, text)
            return
        if 'Task in ' in text and self._task_in(ev, text):
            return
        if self._task_in_pieces(ev, text):
            return
        if text.endswith(('Mem-Info:', 'Mem-info:')):     # lower case i before about 2.6.28
            ev.global_hint = True
            ev.block = 'meminfo'
            if 'meminfo' in self.details:
                ev.meminfo = {}
            return
        if ev.block == 'meminfo':
            self._meminfo_line(ev, text)
            return
        if 'usage' in text or 'Memory cgroup stats for ' in text:
            self._memcg_line(ev, text)

    def _task_line(self, ev, text):
        m = _P['task_header'].search(text)
        if m:
            ev.block = None
            ev.task_cols = m.group(1).split()
            if 'tasks' in self.details:
                ev.tasks = []
            return
        if ev.task_cols is None or ev.tasks is None:
            return
        m = _P['task_row'].search(text)
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
        if _P['meminfo_pairs'].search(text):
            for key, value in _P['pair'].findall(text):
                ev.meminfo.setdefault(key, int(value))
            return
        m = _P['meminfo_total'].search(text)
        if m:
            if m.group(1):
                ev.meminfo[_MEMINFO_TOTAL_KEYS[m.group(1)]] = int(m.group(2))
            else:
                ev.meminfo[_MEMINFO_TOTAL_KEYS[m.group(4)]] = int(m.group(3))

    def _memcg_line(self, ev, text):
        m = _P['memcg_usage'].search(text)
        if m:
            ev.memcg_hint = True
            if 'memcg_stats' in self.details:
                usage = {'usage_kb': int(m.group(2)), 'limit_kb': int(m.group(3)), 'failcnt': int(m.group(4))}
                self._memcg_stats(ev)[m.group(1)] = usage
            return
        m = _P['memcg_stats_head'].search(text)
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
        # (what precedes the name when the header was joined from a line a mailer broke)
        name = _trigger_name(msg[:m.start()]) if m.re is _P['header'] else None
        adj = _P['score_adj_eq'].search(msg, m.end())
        # a vendor's documentation masks digits ("gfp_mask=0x62****"): not the value, so none
        gfp = None if msg[m.end():m.end() + 1] == '*' else m.group('gfp')
        ev.trigger = {'name': name or None, 'pid': None, 'gfp_mask': gfp,
                      'order': _int(_P['order'].search(msg, m.end())), 'oom_score_adj': _int(adj)}

    def _summary(self, ev, msg, m):
        ev.summary_seen = True
        ev.constraint = m.group('c')
        self._summary_fields(ev, msg)

    @staticmethod
    def _summary_fields(ev, msg):
        memcg = _P['summary_memcg'].search(msg)
        task_memcg = _P['summary_task_memcg'].search(msg)
        task_path = task_memcg.group(1) if task_memcg else None
        if memcg:
            ev.oom_memcg = _oom_memcg_path(memcg.group(1), task_path)
        elif _P['summary_global'].search(msg):
            ev.global_hint = True
        if task_memcg:
            ev.task_memcg = task_path
        task = _P['summary_task'].search(msg)
        if task:
            ev.summary_task = (task.group(1).strip(), int(task.group(2)), int(task.group(3)))

    def _victim(self, ev, msg, m, victim=None):
        """The victim dict of a kill line (remembered for an oom_reaper line that may come late)."""
        if victim is None:
            victim = self._victim_fields(msg, m)
        early = self.reaped_early
        if early is not None and early[0] == victim['pid'] and self.lineno - early[2] <= _TAIL_LINES:
            victim['reaped'] = early[1]
            self.reaped_early = None
        if len(self.recent) >= 256:
            self.recent = dict(list(self.recent.items())[-64:])
        self.recent[victim['pid']] = victim
        return victim

    @staticmethod
    def _victim_fields(msg, m):
        groups = m.groupdict()
        rest = msg[m.end():]
        # fields end where another kill line starts (two messages run into one line)
        other = rest.find('illed process ')
        if other >= 0:
            rest = rest[:other]
        uid = groups.get('uid')
        name = groups.get('name')
        victim = {'pid': int(m.group('pid')), 'name': name.strip() or None if name is not None else None,
                  'uid': int(uid) if uid else None,
                  'total_vm_kb': _int(_P['total_vm'].search(rest)), 'anon_rss_kb': _int(_P['anon_rss'].search(rest)),
                  'file_rss_kb': _int(_P['file_rss'].search(rest)), 'shmem_rss_kb': _int(_P['shmem_rss'].search(rest)),
                  'pgtables_kb': _int(_P['pgtables'].search(rest)),
                  'oom_score_adj': _int(_P['score_adj_colon'].search(rest)), 'reaped': False}
        if victim['uid'] is None:
            victim['uid'] = _int(_P['uid_colon'].search(rest) or _P['uid_rhel7'].match(rest))
        return victim

    @staticmethod
    def _kind_from_message(ev, text):
        if not text:
            return
        if 'Memory cgroup out of memory' in text:
            ev.memcg_hint = True
        elif 'Out of memory' in text:
            # "Out of Memory" (capital M, 2.x) said nothing about the scope
            ev.global_hint = True
        elif 'No available memory' in text:
            # 2.6.16 to 2.6.34 named the constraint in the kill line's prefix
            ev.scope_hint = 'cpuset' if 'in cpuset' in text else 'mempolicy' if 'MPOL_' in text else None

    def _value(self, ev):
        stamp = ev.stamp
        epoch = uptime = host = boot = None
        fraction = False
        if stamp is not None:
            self.clock.fill(stamp)
            epoch, uptime, host, fraction, boot = stamp.epoch, stamp.uptime, stamp.host, stamp.fraction, stamp.boot
        if ev.constraint == 'CONSTRAINT_NONE' and ev.oom_memcg:
            # 4.19 to 5.0 printed the summary before setting the constraint: NONE for every OOM, but
            # only a cgroup OOM names oom_memcg=
            kind = 'memcg'
        elif ev.constraint in KINDS:
            kind = KINDS[ev.constraint]
        elif ev.oom_memcg or ev.memcg_hint:
            kind = 'memcg'
        elif ev.scope_hint:
            kind = ev.scope_hint
        elif ev.global_hint:
            kind = 'global'
        else:
            kind = None
        if ev.summary_task is not None:
            name, pid, uid = ev.summary_task
            for victim in ev.victims:
                if victim['pid'] == pid and victim['uid'] is None:
                    victim['uid'] = uid
            if not ev.victims and ev.exiting is None and not ev.no_killable and not ev.panic:
                # the kernel chose this process and printed its kill line next: the excerpt ends before it
                ev.victim = {'pid': pid, 'name': name or None, 'uid': uid, 'total_vm_kb': None, 'anon_rss_kb': None,
                             'file_rss_kb': None, 'shmem_rss_kb': None, 'pgtables_kb': None, 'oom_score_adj': None,
                             'reaped': False}
                ev.victims.append(ev.victim)
        out = {
            'epoch': epoch, 'fraction': fraction, 'line': ev.lineno, 'uptime': uptime, 'host': host, 'boot': boot,
            'kind': kind, 'constraint': ev.constraint, 'oom_memcg': ev.oom_memcg, 'task_memcg': ev.task_memcg,
            'trigger': ev.trigger, 'victim': ev.victim, 'victims': ev.victims,
            'no_killable': ev.no_killable, 'panic': ev.panic, 'exiting': ev.exiting,
        }
        if 'tasks' in self.details:
            out['tasks'] = ev.tasks
        if 'meminfo' in self.details:
            out['meminfo'] = ev.meminfo
        if 'memcg_stats' in self.details:
            out['memcg_stats'] = ev.memcg_stats
        return out


def _reader(details, year, boot_time, ref_time):
    return _Lines(_Messages(_Clock(year, boot_time, ref_time), details))


def parse_lines(lines, details=(), year=None, boot_time=None, ref_time=None):
    """Yield event values from an iterable of text lines, in file order.

    lines: str (or bytes, decoded as UTF-8 with replacement), with or without the newline.
    details: any of 'tasks', 'meminfo', 'memcg_stats' to attach those blocks.
    year: the year of syslog lines that carry none; ref_time (epoch seconds, normally the file's
    mtime) makes a date later than it count as the year before (New Year roll-back).  With
    neither, the current year and time are used.
    boot_time: epoch seconds of this boot; turns dmesg/kmsg uptimes into absolute times (None:
    those events get epoch None).
    Each value's 'line' is the 1-based line of the event's first line; ``format_event`` makes
    the documented fact of it.  Holds at most one event in memory.
    """
    reader = _reader(details, year, boot_time, ref_time)
    skipped = None      # the line just skipped, when it may lead into the next (oom_scan.LEAD_MARKS)
    for lineno, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            line = line.decode('utf-8', 'replace')
        if not reader.wants_all:
            if not any(n in line for n in _NEEDLE_TEXT) and not (line[:1] == '{' and _JSON_BYTES_MARK in line):
                reader.head(line.rstrip('\r\n'))
                skipped = (lineno, line) if any(m in line for m in _LEAD_TEXT) else None
                continue
            if skipped is not None and skipped[0] == lineno - 1:
                yield from reader.feed(skipped[0], skipped[1].rstrip('\r\n'))
        skipped = None
        yield from reader.feed(lineno, line.rstrip('\r\n'))
    yield from reader.finish()


def parse_stream(stream, details=(), year=None, boot_time=None, ref_time=None, end=None, stats=None,
                 chunk_size=oom_scan.CHUNK):
    """Like parse_lines, for a binary file object (plain or compressed): jumps from needle to needle.

    Reads fixed-size chunks, so memory stays at a few chunk sizes whatever the file size.
    Invalid UTF-8 and binary junk are decoded with replacement characters.
    end: stop at the first line that starts at or after this many bytes from where the stream
    was when called, unless a report is still open there (then read on until it is over).
    stats: a dict that receives 'lines' (lines read) and 'lines_at_end' (lines before `end`).
    """
    reader = _reader(details, year, boot_time, ref_time)
    scan = oom_scan.Scan(stream, reader, end, chunk_size)
    yield from scan.run()
    yield from reader.finish()
    if stats is not None:
        stats['lines'] = scan.lines
        stats['lines_at_end'] = scan.lines if scan.lines_at_end is None else scan.lines_at_end
