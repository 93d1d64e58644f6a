# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The byte scanner under ``oom_log.parse_stream``: from needle to needle through a binary file.

Private to the oomguard.memory collection: no compatibility promise to other code.

``Scan`` reads fixed-size chunks and hands whole lines (bytes decoded to text) to a reader object
with ``feed(lineno, text)`` (returns finished events), ``head(text)`` (a journalctl -o verbose
entry header, shown before the entry's MESSAGE= line) and a ``wants_all`` property.  While
``wants_all`` is false it jumps between the hits of ``SCAN_NEEDLES`` found with the C library's
``strstr`` or ``memmem`` (CPython's own search where ctypes or memmem is missing) and counts the newlines it
skips with ``bytes.replace`` (see ``SCAN_NEEDLES`` and ``newlines`` for why these).  It knows nothing of
kernel messages beyond the needles.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

try:
    import ctypes
except ImportError:     # a Python built without libffi
    ctypes = None

# cgroup v1's "Task in X killed as a result of limit of Y" (before 4.19) and memory.oom.group's
# "Tasks in X are going to be killed"; oom_log looks for the same words.
LIMIT_OF_MARK = b'killed as a result of limit of'
GROUP_MARK = b'memory.oom.group'
# A line worth reading outside a report holds one of these: 'oom-kill' (the "invoked oom-killer"
# header, the "oom-kill:" summary), 'Killed' (the kill line, also when a mail client wrapped it
# right after that word), 'ut of memory' ("Out of memory and no killable processes", the panic, a
# selection line, "OOM victim ... is already exiting") or the "Task in" line, where a memcg report
# pasted without its header starts (its usage, stats and task table come before the selection).
NEEDLES = (b'oom-kill', b'Killed', b'ut of memory', LIMIT_OF_MARK)
# journald stores non-UTF-8 messages as a list of byte values, which no substring test can see.
JSON_BYTES_MARK = b'"MESSAGE":['
# journalctl -o verbose prints the time in an entry's header line, a few field lines before its
# MESSAGE= line; the scanner looks back this far for the header (the mark) of a MESSAGE= hit.
VERBOSE_MESSAGE = b'MESSAGE='
VERBOSE_HEAD_MARK = b' [s='
ENTRY_MAX = 1 << 14
# A line just before a hit that the reader must see with it: a "Kill process ... score" selection
# line before its kill line, a memory.oom.group line before the kills of its group (an excerpt cut
# right before it), a header a mailer broke right after "invoked", and an oom_reaper line before
# the kill line it tells of (lines pasted newest first).
LEAD_MARKS = (b'ill process', GROUP_MARK, b' invoked', b'oom_reaper:')
# How the scanner finds NEEDLES in a chunk: (needle, forward).  CPython's reverse search (rfind)
# tests the needle's first byte and jumps len+1 bytes whenever the byte before is not in the
# needle's bloom mask; on kernel logs that beats find() for short needles ('Killed', 'oom-kill')
# whether the interpreter was built with PGO or not, while find()'s skip table wins for the long
# 'ut of memory' (measured on Debian's 3.11 and a plain 3.13 build, 64 MiB of bench/oom_facts.py's
# log).  One shared short needle such as b'ill' is not cheaper to scan and hits every "will",
# "still" and "Killing" of ordinary kernel noise, each a Python-level check.
# Coverage: a line that holds a needle holds the whole needle, so searching NEEDLES themselves
# finds every line the reader looks at outside a report.  No shorter set covers them: the three
# share no substring but single letters and 'ill' ('oom-kill'/'Killed'), and 'ut of memory' must
# stay whole for lines with no kill word in them (a panic_on_oom panic, tests/unit/fixtures/
# oom-logs/115-*; a no-killable line wrapped before "killable").  Measured per GiB on 1 MiB
# chunks of bench/oom_facts.py's log (Debian 3.11 / plain 3.13, best of rounds on a busy 2-core
# VM): each of the three searches costs 0.35-0.65 s whatever substring, direction or bytes.count
# is used (the loops run at about a byte per cycle; bloom skips rarely fire on log text, since
# the mask folds digits onto p-y), newlines() 0.4 s, reading 0.15 s; 'ill' with a check per hit,
# {'Kill', 'kill'}, a bytes.translate fold onto one needle and one regex alternation (7 s) were
# no cheaper.  glibc's memmem (through ctypes, see _libc_search) takes 0.26-0.40 s per needle and
# GiB on the same log, which made the whole module 1.3x faster (bench/oom_facts.py, 2.25x -> 1.7x of
# grep); glibc 2.36's strstr (vector compares of the needle's first two bytes) 0.13-0.16 s, measured
# on the same 256 MiB in one run with both interpreters.  The fourth needle, "killed as a result of
# limit of", costs one such pass more, for memcg reports pasted from their "Task in" line on.
# CPython's search below is kept for a Python without ctypes.  The scan is the sum of these passes.
SCAN_NEEDLES = ((b'oom-kill', False), (b'Killed', False), (b'ut of memory', True), (LIMIT_OF_MARK, True))
# Bytes read at a time.  Every pass above runs over one chunk, and a chunk that stays in the CPU's
# cache for all of them is cheaper: 128 to 256 KiB parse a GiB 10-15% faster than 1 MiB on this
# 2-core VM (3.11 and 3.13, 256 MiB of bench/oom_facts.py's log, best of three).
CHUNK = 1 << 18
# Below this many bytes, bytes.count (a byte loop) beats copying the slice for newlines().
_SMALL_COUNT = 4096
# No kernel message is this long (printk's limit is 1 KiB); longer "lines" are binary junk.
MAX_LINE = 1 << 16


def newlines(data, start=0, end=None):
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


def _libc_search():
    """The C library's (memmem(3), strstr(3)) through ctypes; None for one that cannot be had or fails its check.

    glibc's and musl's memmem skip through text several bytes at a step (a two-byte hash for short
    needles), about twice the speed of CPython's own search on kernel logs; glibc's strstr looks for
    the needle's first two bytes with vector compares, twice as fast again (see SCAN_NEEDLES).
    strstr stops at a NUL byte, so anchors() gives it only text without one.
    """
    if ctypes is None:
        return None, None
    found = []
    probe = b'xx oom-kill yy oom-kill'
    for name, argtypes in (('memmem', (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t)),
                           ('strstr', (ctypes.c_void_p, ctypes.c_char_p))):
        try:
            func = getattr(ctypes.CDLL(None), name)
            func.restype = ctypes.c_void_p
            func.argtypes = argtypes
            base = ctypes.cast(ctypes.c_char_p(probe), ctypes.c_void_p).value
            if name == 'memmem':
                good = func(base + 4, len(probe) - 4, b'oom-kill', 8) == base + 15 and not func(base, 8, b'yy', 2)
            else:
                good = func(base + 4, b'oom-kill') == base + 15 and not func(base + 16, b'xx')
            found.append(func if good else None)
        except (AttributeError, OSError, TypeError, ValueError):
            found.append(None)
    return tuple(found)


MEMMEM, STRSTR = _libc_search()


def anchors(data, start, end, needles):
    """Offsets of needle hits in data[start:end] (whole lines), in ascending order: one hit of each
    needle in each line that holds it.

    The scan reads whole lines, so more hits in a line tell it nothing; skipping them keeps a
    line packed with needles (junk, or a hostile file) from costing a call per hit.
    """
    found = []
    if MEMMEM is not None and isinstance(data, bytes):
        base = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
        # CPython ends every bytes object with a NUL, so strstr stops at data's end at the latest;
        # a NUL inside the range (binary junk) would stop it early: memmem there.
        whole = STRSTR is not None and data.find(b'\0', start, end) < 0
        for needle, _forward in needles:
            size = len(needle)
            at = start
            while at < end:
                if whole:
                    hit = STRSTR(base + at, needle)
                    if not hit or hit - base + size > end:
                        break
                else:
                    hit = MEMMEM(base + at, end - at, needle, size)
                    if not hit:
                        break
                at = hit - base
                found.append(at)
                at = data.find(b'\n', at + size, end) + 1 or end
        found.sort()
        return found
    for needle, forward in needles:
        size = len(needle)
        if forward:
            at = data.find(needle, start, end)
            while at >= 0:
                found.append(at)
                at = data.find(b'\n', at + size, end)
                if at < 0:
                    break
                at = data.find(needle, at + 1, end)
            continue
        at = data.rfind(needle, start, end)
        while at >= 0:
            found.append(at)
            at = data.rfind(b'\n', start, at)
            if at < 0:
                break
            at = data.rfind(needle, start, at)
    found.sort()
    return found


class Scan(object):
    """The needle-to-needle walk over a binary stream, with its line count.

    reader: has feed(lineno, text) -> events, head(text) (see above) and a wants_all property (read every line now).
    end: stop at the first line that starts at or after this many bytes from where the stream
    was, unless the reader still wants every line there.
    """

    def __init__(self, stream, parser, end=None, chunk_size=CHUNK):
        self.stream = stream
        self.parser = parser
        self.end = end
        self.chunk_size = chunk_size
        self.needles = NEEDLES              # tested on one line with `in`
        self.scan_needles = SCAN_NEEDLES   # searched in a chunk, see SCAN_NEEDLES
        self.lines = 0              # lines consumed so far = number of the last line fed
        self.lines_at_end = None
        self.stopped = False
        # (number, bytes) of a skipped LEAD_MARKS line that ended the previous chunk: a hit opening
        # the next chunk belongs with it.
        self.held = None
        # the last ENTRY_MAX bytes read before the current chunk, for an entry header (see
        # _entry_head) that the previous chunk ended with
        self.recent = b''

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
                    self.needles = NEEDLES + (JSON_BYTES_MARK,)
                    self.scan_needles = SCAN_NEEDLES + ((JSON_BYTES_MARK, True),)
            if not data:
                if carry is not None and not self._stop_at(carry_at):
                    yield from self._line(carry)
                return
            pos = 0
            if carry is not None:
                nl = data.find(b'\n')
                if nl < 0:
                    # only binary junk has lines this long: keep their start, drop the rest
                    if len(carry) < MAX_LINE:
                        carry += data[:MAX_LINE - len(carry)]
                    self._remember(data)
                    base += len(data)
                    continue
                if self._stop_at(carry_at):
                    return
                line = carry + data[:nl] if len(carry) < MAX_LINE else carry
                if parser.wants_all or any(n in line for n in self.needles):
                    yield from self._held()
                    self._entry_head(line, 0, self.recent[:max(0, len(self.recent) - len(carry))])
                    yield from self._line(line)
                else:
                    self.lines += 1
                    self._hold(line)
                carry = None
                pos = nl + 1
            last = data.rfind(b'\n') + 1
            if last > pos:
                yield from self._chunk(data, pos, last, base)
                if self.stopped:
                    return
                pos = last
            if pos < len(data):
                carry = data[pos:pos + MAX_LINE]
                carry_at = base + pos
            self._remember(data)
            base += len(data)

    def _remember(self, data):
        """Keep the last ENTRY_MAX bytes read, data being the chunk just done."""
        self.recent = data[-ENTRY_MAX:] if len(data) >= ENTRY_MAX else (self.recent + data)[-ENTRY_MAX:]

    def _held(self):
        """Feed the held selection line when it is the line just before the next one."""
        if self.held is not None and self.held[0] == self.lines:
            return self.parser.feed(self.held[0], self.held[1].decode('utf-8', 'replace').rstrip('\r'))
        return ()

    def _hold(self, raw):
        """Remember the line just skipped (numbered self.lines) when it holds one of LEAD_MARKS."""
        self.held = (self.lines, raw) if any(mark in raw for mark in LEAD_MARKS) else None

    def _entry_head(self, data, start, before=None):
        """Show the reader the header of the journalctl -o verbose entry whose MESSAGE= line starts at `start`.

        before: the bytes read before data (the end of the previous chunk) where data[:start] is
        shorter than ENTRY_MAX; self.recent unless given.
        """
        if not data[start:start + 64].lstrip().startswith(VERBOSE_MESSAGE):
            return
        if start >= ENTRY_MAX:
            text, lo = data, start - ENTRY_MAX
        else:
            before = self.recent if before is None else before
            text = before[max(0, len(before) - (ENTRY_MAX - start)):] + data[:start]
            start, lo = len(text), 0
        mark = text.rfind(VERBOSE_HEAD_MARK, lo, start)
        if mark >= 0:
            end = text.find(b'\n', mark, start)
            head = text[text.rfind(b'\n', 0, mark) + 1:end if end >= 0 else start]
            self.parser.head(head.decode('utf-8', 'replace').rstrip('\r'))

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
        hits = anchors(data, pos, last, self.scan_needles)
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
                        self.lines += newlines(data) - (1 if begin else 0)
                    else:
                        self.lines += newlines(data, pos, limit)
                    if limit == last:
                        self._hold(data[(data.rfind(b'\n', pos, limit - 1) + 1 or pos):limit - 1])
                    pos = limit
                    continue
                start = data.rfind(b'\n', pos, hit) + 1 or pos
                self._entry_head(data, start)
                if start == pos == begin:
                    yield from self._held()
                if start > pos:
                    # the line just before, when it leads into this one (LEAD_MARKS)
                    prev = data.rfind(b'\n', pos, start - 1) + 1 or pos
                    if any(data.find(mark, prev, start) >= 0 for mark in LEAD_MARKS):
                        start = prev
                    self.lines += newlines(data, pos, start)
                    pos = start
            nl = data.find(b'\n', pos)
            raw = data[pos:nl]
            pos = nl + 1
            yield from self._line(raw)
