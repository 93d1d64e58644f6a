# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Byte-exact editing of swap entries in /etc/fstab: text in, text out.

Private to the oomguard.memory collection: no compatibility promise to other code.

Only the lines that name the swap file being managed are touched. Every other line keeps its
bytes: comments, tabs, odd spacing, UUID= lines, CRLF endings and a missing final newline. A
line we append follows the file's own style for the last line, so adding our entry to a file
without a final newline and removing it again gives back the original bytes.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.oomguard.memory.plugins.module_utils.procfs import unescape_octal

# fstab(5) escapes these characters in its fields as octal.
_ESCAPES = (('\\', '\\134'), (' ', '\\040'), ('\t', '\\011'), ('\n', '\\012'))


def escape_field(text):
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return text


def unescape_field(text):
    # fstab escapes fields exactly as the kernel escapes /proc/mounts.
    return unescape_octal(text)


def split_lines(text):
    """The file as a list of lines, each with its own ending ('' for a last line without one)."""
    return text.splitlines(True) if text else []


def parse_line(line):
    """A line's fields {spec, file, type, options, dump, passno}, or None for comments/blanks."""
    body = line.rstrip('\r\n')
    stripped = body.strip()
    if not stripped or stripped.startswith('#'):
        return None
    fields = stripped.split()
    if len(fields) < 3:
        return None
    return {'spec': unescape_field(fields[0]), 'file': unescape_field(fields[1]), 'type': fields[2],
            'options': fields[3].split(',') if len(fields) > 3 else ['defaults'],
            'dump': fields[4] if len(fields) > 4 else '0', 'passno': fields[5] if len(fields) > 5 else '0'}


def option_value(options, name):
    """The value of ``name=value`` in an options list, or None."""
    for option in options:
        key, sep, value = option.partition('=')
        if sep and key == name:
            return value
    return None


def swap_entries(text, path):
    """Indexes (in split_lines(text)) of the swap lines whose device is ``path``."""
    found = []
    for index, line in enumerate(split_lines(text)):
        entry = parse_line(line)
        if entry and entry['type'] == 'swap' and entry['spec'] == path:
            found.append(index)
    return found


def render_entry(path, priority=None):
    """The line we write for a swap file (no line ending)."""
    options = 'sw' if priority is None else 'sw,pri=%d' % priority
    return '%s none swap %s 0 0' % (escape_field(path), options)


def entry_satisfies(line, path, priority=None):
    """True when an existing fstab line already activates ``path`` at boot as asked.

    priority None means "not managed": any pri= (or none) is accepted.
    """
    entry = parse_line(line)
    if not entry or entry['type'] != 'swap' or entry['spec'] != path or 'noauto' in entry['options']:
        return False
    if priority is None:
        return True
    return option_value(entry['options'], 'pri') == str(priority)


def _ending_of(lines):
    """The line ending the file uses ('\\r\\n' or '\\n')."""
    for line in lines:
        if line.endswith('\r\n'):
            return '\r\n'
        if line.endswith('\n'):
            return '\n'
    return '\n'


def _remove(lines, index):
    """Remove line ``index``; when it was the last line and had no ending, the previous line
    gives up its ending so the file keeps ending without one."""
    line = lines.pop(index)
    if index == len(lines) and lines and not line.endswith('\n'):
        prev = lines[-1]
        lines[-1] = prev[:-2] if prev.endswith('\r\n') else prev.rstrip('\n')


def set_swap_entry(text, path, priority=None, present=True):
    """Return fstab text with exactly one satisfying entry for ``path`` (present) or none (absent).

    An existing satisfying line is kept as it is (its spacing and options are the user's);
    a non-satisfying one is replaced in place; duplicates are removed.
    """
    text = text or ''
    lines = split_lines(text)
    found = swap_entries(text, path)
    keep = None
    if present:
        keep = next((i for i in found if entry_satisfies(lines[i], path, priority)), None)
        if keep is None and found:
            keep = found[0]
            old = lines[keep]
            ending = old[len(old.rstrip('\r\n')):]
            lines[keep] = render_entry(path, priority) + ending
    for index in reversed(found):
        if index != keep:
            _remove(lines, index)
    if present and keep is None:
        ending = _ending_of(lines)
        if lines and not lines[-1].endswith('\n'):
            # Follow the file's style: the last line has no ending, so ours has none either.
            lines[-1] += ending
            lines.append(render_entry(path, priority))
        else:
            lines.append(render_entry(path, priority) + ending)
    return ''.join(lines)


def current_line(text, path):
    """The first swap line for ``path`` without its ending, or None."""
    lines = split_lines(text or '')
    found = swap_entries(text or '', path)
    return lines[found[0]].rstrip('\r\n') if found else None
