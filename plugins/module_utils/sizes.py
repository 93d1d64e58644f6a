# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Size parsing and formatting shared by every oomguard module.

Private to the oomguard.memory collection: no compatibility promise to other code.

One rule everywhere, the kernel's and systemd's: K, M, G, T, P are powers of 1024, with or
without a trailing ``B`` or ``iB`` (``512K`` == ``512KiB`` == ``512KB`` == 524288). Percentages
(of RAM) and ``infinity``/``max`` are accepted only where the caller allows them.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError

# The largest value the kernel's page counters accept (LONG_MAX); anything above is a typo.
MAX_BYTES = 2 ** 63 - 1

_UNITS = {'': 0, 'K': 1, 'M': 2, 'G': 3, 'T': 4, 'P': 5, 'E': 6}
_SIZE_RE = re.compile(r'^\s*(?P<num>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>[kKmMgGtTpPeE]?)(?P<suffix>i?[bB])?\s*$')
_PERCENT_RE = re.compile(r'^\s*(?P<num>\d+(?:\.\d+)?)\s*%\s*$')
INFINITY_WORDS = ('infinity', 'max')


class SizeError(OomguardError, ValueError):
    """A size the user wrote that we cannot accept; str() is the sentence to show."""


def parse_size(value, name='size', allow_percent=False, total=None, allow_infinity=False):
    """Return a size in bytes (int), or None for infinity when allowed.

    value: an int, or text such as '1073741824', '512K', '512KiB', '2G', '1.5g', '2GB',
    '25%' (allow_percent; a share of ``total`` bytes) or 'infinity'/'max' (allow_infinity).
    name: the option name, used in error messages.
    """
    if isinstance(value, bool):
        raise SizeError('%s: expected a size such as 512M or 2G, got a boolean' % name)
    if isinstance(value, int):
        return _checked(value, value, name)
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str):
        raise SizeError('%s: expected a size such as 512M or 2G, got %r' % (name, value))
    text = value.strip()
    if not text:
        raise SizeError('%s: empty size; write a number of bytes or a size such as 512M or 2G' % name)
    if text.lower() in INFINITY_WORDS:
        if allow_infinity:
            return None
        raise SizeError('%s: %r is not allowed here; write a size such as 512M or 2G' % (name, value))
    if text.startswith('-'):
        raise SizeError('%s: %r is negative; sizes must be zero or more' % (name, value))
    match = _PERCENT_RE.match(text)
    if match:
        if not allow_percent:
            raise SizeError('%s: a percentage (%r) is not allowed here; write a size such as 512M or 2G' % (name, value))
        percent = float(match.group('num'))
        if percent > 100:
            raise SizeError('%s: %r is more than 100%%' % (name, value))
        if total is None:
            raise SizeError('%s: %r needs the total it is a share of, which is unknown here' % (name, value))
        return _checked(int(total * percent / 100), value, name)
    match = _SIZE_RE.match(text)
    if not match:
        raise SizeError('%s: cannot read %r as a size; write bytes (1073741824) or a number with K, M, G, T or P '
                        '(512M, 1.5G, 2GiB)' % (name, value))
    number = match.group('num')
    power = _UNITS[match.group('unit').upper()]
    if '.' in number:
        whole, frac = number.split('.')
        # Exact arithmetic: 1.5G must be 1610612736, not a float approximation.
        numerator = int(whole or '0') * 10 ** len(frac) + int(frac)
        scaled, rest = divmod(numerator * 1024 ** power, 10 ** len(frac))
        if rest and power == 0:
            raise SizeError('%s: %r is not a whole number of bytes' % (name, value))
        return _checked(scaled, value, name)
    return _checked(int(number) * 1024 ** power, value, name)


def _checked(size, original, name):
    if size < 0:
        raise SizeError('%s: %r is negative; sizes must be zero or more' % (name, original))
    if size > MAX_BYTES:
        raise SizeError('%s: %r is larger than the kernel can represent (%d bytes)' % (name, original, MAX_BYTES))
    return size


def format_size(size):
    """Format bytes for people: '512M', '1.5G', '4096' (exact bytes when no unit divides evenly
    to one decimal). None means infinity."""
    if size is None:
        return 'infinity'
    for unit in ('E', 'P', 'T', 'G', 'M', 'K'):
        factor = 1024 ** _UNITS[unit]
        if size >= factor:
            if size % factor == 0:
                return '%d%s' % (size // factor, unit)
            if (size * 10) % factor == 0:
                return '%.1f%s' % (size / factor, unit)
    return '%d' % size


def human_size(size):
    """Bytes for a message, always with a unit: '37 bytes', '2G', '1.5G', '76.1G' (rounded to one
    decimal when no unit divides evenly; use format_size where the exact value matters)."""
    if size is None:
        return 'infinity'
    exact = format_size(size)
    if not exact.isdigit():
        return exact
    for unit in ('E', 'P', 'T', 'G', 'M', 'K'):
        factor = 1024 ** _UNITS[unit]
        if size >= factor:
            return '%.1f%s' % (size / factor, unit)
    return '%d byte%s' % (size, '' if size == 1 else 's')
