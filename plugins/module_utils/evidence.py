# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One snapshot of a host's memory state, taken before and after a remediation or a drill.

Private to the oomguard.memory collection: no compatibility promise to other code.

``memory_evidence(root)`` reads /proc/meminfo, /proc/swaps, /proc/pressure/memory and the
oom_kill count of /proc/vmstat through the procfs readers (sizes in kB, as the kernel prints
them); ``available_low`` says whether MemAvailable is under a threshold given as a size or a
percentage of MemTotal.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import time

from ansible_collections.oomguard.memory.plugins.module_utils import procfs
from ansible_collections.oomguard.memory.plugins.module_utils.sizes import parse_size


def memory_evidence(root='/', warn=None):
    """{time, mem_total_kb, mem_available_kb, cached_kb, swap_total_kb, swap_free_kb, swaps, pressure,
    oom_kill}; pressure and oom_kill are None on kernels without them."""
    info = procfs.read_meminfo(root)
    vmstat = procfs.read_vmstat(root, warn) or {}
    return {
        'time': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        'mem_total_kb': info.get('MemTotal'),
        'mem_available_kb': info.get('MemAvailable'),
        'cached_kb': info.get('Cached'),
        'swap_total_kb': info.get('SwapTotal'),
        'swap_free_kb': info.get('SwapFree'),
        'swaps': [{'path': s['path'], 'size_kb': s['size_kb'], 'used_kb': s['used_kb']}
                  for s in procfs.read_swaps(root, warn)],
        'pressure': procfs.read_pressure(root, 'memory', warn),
        'oom_kill': vmstat.get('oom_kill'),
    }


def available_low(evidence, threshold):
    """Whether MemAvailable is under ``threshold`` (bytes, a size such as '512M', or a percentage
    of MemTotal such as '10%'); SizeError for a threshold that is not a size."""
    limit = parse_size(threshold, name='threshold', allow_percent=True, total=evidence['mem_total_kb'] * 1024)
    return evidence['mem_available_kb'] * 1024 < limit
