# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fact set of oomguard.memory.oom_facts (``ansible_facts.oom``), built in one place so that
oom_facts and memory_audit (with ``facts: true``, one module run per host in the report) return
the same facts from the same code.

Private to the oomguard.memory collection: no compatibility promise to other code.

``gather(params, run_command, warn, root)`` reads the logs through ``oom_sources.collect``
(the oom_log parser) and the kernel state through the procfs readers, all under ``root``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import heapq

from ansible_collections.oomguard.memory.plugins.module_utils import procfs
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.oom_log import format_event
from ansible_collections.oomguard.memory.plugins.module_utils.oom_sources import collect, parse_since, summarize


class OptionError(OomguardError):
    """An option value (since) that nothing can mean; str() names it."""


def memory_state(warn, root='/'):
    info = procfs.read_meminfo(root)
    return {
        'mem_total_kb': info.get('MemTotal'), 'mem_available_kb': info.get('MemAvailable'),
        'swap_total_kb': info.get('SwapTotal'), 'swap_free_kb': info.get('SwapFree'),
        'committed_as_kb': info.get('Committed_AS'), 'commit_limit_kb': info.get('CommitLimit'),
        'overcommit_memory': procfs.read_sysctl('vm.overcommit_memory', root, warn),
        'swappiness': procfs.read_sysctl('vm.swappiness', root, warn),
    }


def process_row(pid, root='/'):
    stat = procfs.read_pid_stat(pid, root)
    if procfs.is_kernel_thread(stat):
        return None
    status = procfs.read_pid_status(pid, root)
    return {'pid': pid, 'name': stat['comm'], 'rss_kb': status.get('VmRSS_kb', 0),
            'swap_kb': status.get('VmSwap_kb', 0)}


def top_processes(count, root='/'):
    """The ``count`` largest processes by RSS; processes that exit meanwhile are skipped."""
    if count <= 0:
        return []
    rows = []
    for pid in procfs.list_pids(root):
        try:
            row = process_row(pid, root)
        except procfs.ProcError:
            continue
        if row is not None:
            rows.append(row)
    largest = heapq.nlargest(count, rows, key=lambda row: (row['rss_kb'], -row['pid']))
    result = []
    for row in largest:
        try:
            row['oom_score'] = procfs.read_pid_oom_score(row['pid'], root)
            row['oom_score_adj'] = procfs.read_pid_oom_score_adj(row['pid'], root)
            row['memcg'] = procfs.memory_cgroup_of(procfs.read_pid_cgroup(row['pid'], root))
        except procfs.ProcError:
            continue
        result.append(row)
    return result


def counters(warn, root='/'):
    vmstat = procfs.read_vmstat(root, warn) or {}
    try:
        memcg = procfs.read_memcg_oom_counters(procfs.detect_cgroup_layout(root), warn)
    except procfs.ProcError as exc:
        warn('cannot read the memory cgroup OOM counters: %s' % exc)
        memcg = []
    return {'vmstat_oom_kill': vmstat.get('oom_kill'), 'memcg': memcg}


def gather(params, run_command, warn, root='/'):
    """ansible_facts.oom for params {sources, since, max_events, details, top}, as oom_facts builds it.

    Raises OomguardError (OomSourceError, or the since sentence) or procfs.ProcError."""
    try:
        boot_time = procfs.read_boot_time(root)
    except procfs.ProcError as exc:
        warn('%s; kernel uptimes stay uptimes (event times null)' % exc)
        boot_time = None
    try:
        since = parse_since(params['since'], boot_time=boot_time) if params.get('since') else None
    except ValueError as exc:
        raise OptionError(str(exc))
    values, sources_read = collect(params['sources'], run_command, warn, since=since,
                                   details=params.get('details') or (), root=root, boot_time=boot_time)
    events = [format_event(value) for value in values]
    max_events = params['max_events']
    return {
        'summary': summarize(events),
        'events': events[-max_events:] if max_events else [],
        'sources_read': sources_read,
        'counters': counters(warn, root),
        'memory': memory_state(warn, root),
        'pressure': procfs.read_pressure(root, 'memory', warn),
        'top_processes': top_processes(params['top'], root),
    }
