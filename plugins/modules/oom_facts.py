#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: oom_facts
short_description: Kernel OOM-killer reports from every log source, and the memory state, as facts
version_added: 0.1.0
description:
  - Reads every kernel out-of-memory (OOM) killer report it can find (the systemd journal,
    C(/dev/kmsg) or C(dmesg), and syslog files, plain or compressed) and returns each invocation
    of the OOM killer as a structured event under C(ansible_facts.oom.events), with who
    triggered it, which cgroup hit its limit, who was killed and how big it was.
  - Finds the kernel's own text wherever a line puts it, whatever precedes it (syslog, RFC 3339
    or RFC 5424 stamps, any C(journalctl -o) format, C(dmesg -T) or C(-x), busybox C(logread),
    hypervisor logs, console prompts, line numbers, mail quoting, JSON events of other tools),
    and rejoins lines a mail client or a terminal wrapped. What a damaged excerpt no longer
    holds is null, never guessed.
  - Understands the report formats of kernels 2.4/2.6 to 6.x, including RHEL backports, the
    5.0+ C(oom-kill:) summary line, cgroup v1 and v2 paths, rate-limited reports and
    truncated logs. An event found in two sources is reported once.
  - Also returns the kernel's OOM counters, the memory and swap state, memory pressure (PSI)
    and the largest processes now, so one task answers "was it the OOM killer, what did it
    kill, and why".
  - Streams its input; memory use stays flat whatever the size of the logs.
  - Read-only. Needs root to read C(/dev/kmsg), the journal and most syslog files.
author:
  - oomguard developers (@oomguard)
extends_documentation_fragment:
  - oomguard.memory.attributes.facts
options:
  sources:
    description:
      - Where to read kernel messages, in any combination.
      - V(auto) is the journal when it holds kernel messages, otherwise C(/dev/kmsg) (or the
        C(dmesg) command when C(/dev/kmsg) cannot be read), plus whichever of
        C(/var/log/kern.log), C(/var/log/syslog), C(/var/log/messages) and their rotated
        siblings (C(.1), C(.2.gz), ...) exist.
      - V(kmsg) reads the kernel ring buffer from C(/dev/kmsg); V(dmesg) runs C(dmesg);
        V(journal) streams the kernel messages of every boot the journal keeps, one
        C(journalctl -o short-unix -b BOOT _TRANSPORT=kernel) per boot (C(-o json) where
        C(journalctl) is too old for that), with O(since) passed to C(journalctl).
      - Anything else is a file path or a glob, for example C(/var/log/kern.log*). Files may be
        plain, C(.gz), C(.xz) or C(.bz2), or C(.zst) where the C(zstd) command exists. Only
        regular files are read; a device, FIFO, socket or directory is refused (use the keyword
        V(kmsg) for the kernel ring buffer, not the path C(/dev/kmsg)).
      - A source that is missing, unreadable, not a regular file or damaged (a corrupt or cut
        compressed file) gives a warning and is skipped, unless it is the only source named,
        which fails the task. A glob's matches never fail the task one by one; a bad rotated
        file is a warning. RV(ansible_facts.oom.sources_read) lists what was read and what not.
    type: list
    elements: str
    default: [auto]
  since:
    description:
      - Only report events at or after this time.
      - V(boot) (the start of the current boot), an ISO-8601 time such as
        C(2026-11-25T08:00:00Z) (UTC when no offset is given), or an age such as C(30m),
        C(24h), C(7d) (units s, m, h, d, w).
      - Events whose time cannot be known (bare messages without timestamps) are left out when O(since) is set,
        since nothing shows they happened after it.
    type: str
  max_events:
    description:
      - How many events to return in RV(ansible_facts.oom.events), the newest kept.
        RV(ansible_facts.oom.summary) still counts all of them.
    type: int
    default: 1000
  details:
    description:
      - Also attach these blocks of each report to its event.
      - V(tasks) is the task table (one row per process), V(meminfo) the Mem-Info block,
        V(memcg_stats) the memory cgroup usage and statistics block.
    type: list
    elements: str
    choices: [tasks, meminfo, memcg_stats]
    default: []
  top:
    description:
      - How many of the largest processes (by resident memory) to report in
        RV(ansible_facts.oom.top_processes). V(0) skips the process scan.
    type: int
    default: 10
notes:
  - Syslog lines carry no year; it is taken from the file's modification time, rolling back
    across New Year. C(dmesg) uptimes of the current boot become absolute times from the boot
    time; those of earlier boots (rotated syslog files with bare uptimes) keep RV(ansible_facts.oom.events[].time) null.
seealso:
  - name: Kernel documentation on the OOM killer and cgroup memory controller
    description: What oom_score_adj, memory.max and the OOM counters mean.
    link: https://docs.kernel.org/admin-guide/cgroup-v2.html#memory
'''

EXAMPLES = r'''
- name: Gather OOM facts from every log source of the host
  oomguard.memory.oom_facts:

- name: Show what the OOM killer did in the last day
  ansible.builtin.debug:
    msg: "{{ item.time }}: {{ item.victim.name | default('?') }} (pid {{ item.victim.pid | default('?') }}) in {{ item.oom_memcg | default('-') }}"
  loop: "{{ ansible_facts.oom.events }}"

- name: CI gate - fail when the OOM killer killed anything since the deploy started
  block:
    - name: Gather OOM facts since the deploy started
      oomguard.memory.oom_facts:
        sources: [kmsg]
        since: "{{ deploy_started_at }}"
        top: 0
    - name: Fail on any OOM kill
      ansible.builtin.assert:
        that: ansible_facts.oom.summary.kills == 0
        fail_msg: >-
          The OOM killer killed {{ ansible_facts.oom.summary.kills }} processes:
          {{ ansible_facts.oom.summary.by_victim }}

- name: Read rotated syslog files of another machine, with task tables
  oomguard.memory.oom_facts:
    sources:
      - /srv/logs/db1/kern.log*
    details: [tasks]
    since: 7d
'''

RETURN = r'''
ansible_facts:
  description: Facts returned under C(ansible_facts.oom).
  returned: always
  type: dict
  contains:
    oom:
      description: Everything this module found.
      returned: always
      type: dict
      contains:
        events:
          description:
            - One event per invocation of the OOM killer, oldest first (at most O(max_events), the newest).
            - A kill whose report header the kernel rate-limited away has RV(ansible_facts.oom.events[].trigger=null);
              a report with no kill (log cut off, or nothing killable) has RV(ansible_facts.oom.events[].victim=null).
          returned: always
          type: list
          elements: dict
          contains:
            time:
              description: When it happened, ISO-8601 UTC, or null when the log does not tell.
              type: str
              sample: '2026-11-25T08:01:02.123456Z'
            uptime:
              description: Seconds since boot of the kernel message, or null.
              type: float
              sample: 252.971105
            host:
              description: The host name from a syslog or journal prefix, or null.
              type: str
            boot:
              description: The journal's boot ID of the event (source V(journal) or a journal JSON export), else null.
              type: str
            source:
              description: Where the event was read, with the line number of its first line.
              type: str
              sample: /var/log/kern.log:1234
            kind:
              description:
                - What ran out. When the kernel printed a constraint it decides, one to one -
                  C(CONSTRAINT_NONE) V(global), C(CONSTRAINT_MEMCG) V(memcg), C(CONSTRAINT_CPUSET) V(cpuset),
                  C(CONSTRAINT_MEMORY_POLICY) V(mempolicy).
                - Except C(CONSTRAINT_NONE) with an C(oom_memcg=) field, which kernels 4.19 to 5.0 printed for
                  every cgroup OOM - V(memcg).
                - Without one (kernels before 4.19, or an excerpt without the C(oom-kill:) line) V(memcg) when the
                  report shows a memory cgroup at its limit, V(global) when it says "Out of memory" or shows the
                  machine's Mem-Info, V(cpuset) or V(mempolicy) when a 2.6 kill line says "No available memory in
                  cpuset" or "(MPOL_BIND)", and null when the excerpt does not tell.
              type: str
              choices: [global, memcg, cpuset, mempolicy]
              sample: memcg
            constraint:
              description: The kernel's constraint (V(CONSTRAINT_NONE), V(CONSTRAINT_MEMCG), V(CONSTRAINT_CPUSET), V(CONSTRAINT_MEMORY_POLICY)) or null.
              type: str
            oom_memcg:
              description: The cgroup whose limit was hit (C(oom_memcg=), or the older "killed as a result of limit of"), or null.
              type: str
              sample: /system.slice/app.service
            task_memcg:
              description: The victim's own cgroup, or null.
              type: str
            trigger:
              description: The process whose allocation invoked the OOM killer, or null.
              type: dict
              sample: {name: python3, pid: 4694, gfp_mask: '0xcc0', order: 0, oom_score_adj: 0}
            victim:
              description:
                - The killed process, or null. Sizes in kB; a field the kernel version did not print is null.
                - Keys C(pid), C(name), C(uid), C(total_vm_kb), C(anon_rss_kb), C(file_rss_kb), C(shmem_rss_kb),
                  C(pgtables_kb), C(oom_score_adj), C(reaped). C(uid) comes from the C(oom-kill:) line when the kill
                  line lacks it.
                - When the excerpt ends before the kill line, the process the C(oom-kill:) line named (it is
                  printed just before the kill) with its sizes null; not when the kernel said it was already
                  exiting.
                - When the kernel sacrificed a child of the selected process, the child is the victim.
              type: dict
            victims:
              description:
                - Every process this invocation killed, in the order killed, each pid once; the first is RV(ansible_facts.oom.events[].victim).
                - More than one when memory.oom.group made the kernel kill the whole cgroup.
              type: list
              elements: dict
            exiting:
              description: When the kernel chose a process that was already exiting and killed nothing, that process (C(pid), C(name)); else null.
              type: dict
            reaped:
              description: True when the oom_reaper reported reaping the victim's memory; false when it did not, or said it was unable to.
              type: bool
            no_killable:
              description: True when the kernel found no process it could kill.
              type: bool
            panic:
              description: True when the kernel panicked on this OOM (C(vm.panic_on_oom), or nothing killable).
              type: bool
            tasks:
              description: With O(details=tasks), the task table rows (pid, uid, tgid, total_vm, rss and the other printed columns, name).
              type: list
              elements: dict
              returned: when asked
            meminfo:
              description: With O(details=meminfo), the Mem-Info block.
              type: dict
              returned: when asked
            memcg_stats:
              description: With O(details=memcg_stats), the memory cgroup usage and statistics block.
              type: dict
              returned: when asked
        summary:
          description: Counts over all events found since O(since), not only those kept in RV(ansible_facts.oom.events).
          returned: always
          type: dict
          contains:
            events:
              description: Number of OOM killer invocations.
              type: int
            kills:
              description: Number of processes killed (every victim of a group kill counts).
              type: int
            first:
              description: Time of the oldest event, or null.
              type: str
            last:
              description: Time of the newest event, or null.
              type: str
            by_victim:
              description: Kills per victim process name.
              type: dict
              sample: {java: 3, python3: 1}
            by_memcg:
              description: Events per cgroup whose limit was hit.
              type: dict
              sample: {/system.slice/app.service: 2}
        sources_read:
          description:
            - One entry per source looked at, so a CI job can tell "no OOM" from "could not look".
            - C(source) the keyword or path, C(status) V(read) or V(skipped), C(reason) null or one of
              V(missing), V(permission), V(empty), V(not a regular file), V(corrupt), V(no decompressor), V(unreadable),
              and C(events) the number of events read from it (before merging copies seen in two sources).
          returned: always
          type: list
          elements: dict
          sample: [{source: journal, status: skipped, reason: missing, events: 0}, {source: kmsg, status: read, reason: null, events: 2}]
        counters:
          description: The kernel's own OOM counters (since boot).
          returned: always
          type: dict
          contains:
            vmstat_oom_kill:
              description: C(oom_kill) from C(/proc/vmstat), or null when the kernel does not count it.
              type: int
            memcg:
              description: Memory cgroups with non-zero OOM counters (v2 C(memory.events), v1 C(memory.oom_control); v1 has no C(oom) count, so null).
              type: list
              elements: dict
              sample: [{path: /batch, oom: null, oom_kill: 4}]
        memory:
          description: The memory and swap state now (kB), and the settings that decide OOM behaviour.
          returned: always
          type: dict
          contains:
            mem_total_kb: {description: MemTotal., type: int}
            mem_available_kb: {description: MemAvailable., type: int}
            swap_total_kb: {description: SwapTotal., type: int}
            swap_free_kb: {description: SwapFree., type: int}
            committed_as_kb: {description: Committed_AS., type: int}
            commit_limit_kb: {description: CommitLimit., type: int}
            overcommit_memory: {description: vm.overcommit_memory., type: int}
            swappiness: {description: vm.swappiness., type: int}
        pressure:
          description: Memory pressure (PSI) C(some) and C(full), each with C(avg10), C(avg60), C(avg300) and C(total); null without PSI.
          returned: always
          type: dict
          sample: {some: {avg10: 0.0, avg60: 0.0, avg300: 0.0, total: 0}, full: {avg10: 0.0, avg60: 0.0, avg300: 0.0, total: 0}}
        top_processes:
          description: The largest processes by resident memory now, largest first.
          returned: always
          type: list
          elements: dict
          sample: [{pid: 812, name: postgres, rss_kb: 1048576, swap_kb: 0, oom_score: 712, oom_score_adj: 0, memcg: /system.slice/postgresql.service}]
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.oomguard.memory.plugins.module_utils import oom_state, procfs
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.oom_log import format_event
from ansible_collections.oomguard.memory.plugins.module_utils.oom_sources import collect, parse_since, summarize

# Tests point the /proc and /sys readers at a fake tree through this.
ROOT = '/'


class OptionError(OomguardError):
    """An option value the module refuses."""


class HostError(OomguardError):
    """A kernel file every run needs (/proc/meminfo) cannot be read."""


def argument_spec():
    return dict(
        sources=dict(type='list', elements='str', default=['auto']),
        since=dict(type='str'),
        max_events=dict(type='int', default=1000),
        details=dict(type='list', elements='str', default=[], choices=['tasks', 'meminfo', 'memcg_stats']),
        top=dict(type='int', default=10),
    )


# The fact set's readers live in module_utils/oom_state.py, shared with memory_audit (facts=true).
def memory_state(warn):
    return oom_state.memory_state(warn, ROOT)


def top_processes(count):
    return oom_state.top_processes(count, ROOT)


def counters(warn):
    return oom_state.counters(warn, ROOT)


def check_options(params):
    """Refuse option values no source or count can mean, naming the option."""
    for name in ('max_events', 'top'):
        if params[name] < 0:
            raise OptionError('%s must be 0 or more, got %d' % (name, params[name]))
    if not params['sources']:
        raise OptionError('sources is empty; name at least one source, or leave it out for auto')


def gather(module):
    """All facts under ansible_facts.oom."""
    params = module.params
    check_options(params)
    try:
        boot_time = procfs.read_boot_time(ROOT)
    except procfs.ProcError as exc:
        module.warn('%s; kernel uptimes stay uptimes (event times null)' % exc)
        boot_time = None
    try:
        since = parse_since(params['since'], boot_time=boot_time) if params['since'] else None
    except ValueError as exc:
        raise OptionError(str(exc))

    def run_command(argv):
        return module.run_command(argv, environ_update={'LC_ALL': 'C'})

    values, sources_read = collect(params['sources'], run_command, module.warn, since=since,
                                   details=params['details'], root=ROOT, boot_time=boot_time)
    events = [format_event(value) for value in values]
    try:
        return host_facts(module, params, events, sources_read)
    except procfs.ProcError as exc:
        raise HostError(str(exc))


def host_facts(module, params, events, sources_read):
    return {
        'summary': summarize(events),
        'events': events[-params['max_events']:] if params['max_events'] else [],
        'sources_read': sources_read,
        'counters': counters(module.warn),
        'memory': memory_state(module.warn),
        'pressure': procfs.read_pressure(ROOT, 'memory', module.warn),
        'top_processes': top_processes(params['top']),
    }


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        facts = gather(module)
    except OomguardError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ansible_facts={'oom': facts})


if __name__ == '__main__':
    main()
