#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: memory_audit
short_description: Read-only audit of how close a host is to its next OOM kill, with the fix for each finding
version_added: 0.1.0
description:
  - Runs a list of checks against the host and returns one finding per risk, each with an
    RV(findings[].id), a RV(findings[].severity) (V(high), V(medium), V(low)), the
    RV(findings[].evidence) (the numbers it read) and the RV(findings[].fix) (the role and
    variable of this collection that fixes it, when there is one).
  - "The checks (O(checks)): V(oom_kills), OOM kills in the window, read by the parser of
    M(oomguard.memory.oom_facts) (or taken from its O(oom_summary)); V(swap), no swap while the
    memory commit charge is near the commit limit, or swap nearly full; V(critical_processes),
    critical processes (O(critical_processes)) with C(oom_score_adj >= 0); V(unit_limits), the
    largest systemd services without C(MemoryMax=)/C(MemoryHigh=) and a C(memory.high) at or
    above C(memory.max); V(container_limits), running Docker or Podman containers without a
    memory limit (when either runtime is installed); V(sysctl_overrides), a managed sysctl set
    in one sysctl.d file and overridden by a later one, or a running value the next boot
    changes; V(memory_pressure), PSI C(full avg60) above a threshold; V(overcommit),
    C(vm.overcommit_memory) and C(vm.panic_on_oom) with their consequence, and conflicts with
    the host's role (a Kubernetes node expects 1 and 0)."
  - A check that cannot run on the host (no PSI, no systemd, no container runtime) is reported
    as V(skipped) with the reason in RV(checks), never as a failure.
  - Read-only; changes nothing, so it runs the same in check mode. Needs root for the kernel
    logs and for other users' processes and containers.
author:
  - oomguard developers (@oomguard)
extends_documentation_fragment:
  - oomguard.memory.attributes.facts
attributes:
  facts:
    support: none
    description: Returns its results as plain return values (register them), not as facts.
options:
  checks:
    description:
      - The checks to run, in this order. All of them by default.
    type: list
    elements: str
    choices: [oom_kills, swap, critical_processes, unit_limits, container_limits, sysctl_overrides, memory_pressure, overcommit]
  oom_summary:
    description:
      - The RV(oomguard.memory.oom_facts#module:ansible_facts.oom.summary) of an
        M(oomguard.memory.oom_facts) run on the same host. When given, the V(oom_kills) check uses
        it and the logs are not read a second time (what C(playbooks/oom_report.yml) does).
      - When not given, the logs of O(sources) are read with the parser of
        M(oomguard.memory.oom_facts) from O(since) on.
    type: dict
  facts:
    description:
      - Also return the whole fact set of M(oomguard.memory.oom_facts) as
        RV(ansible_facts.oom), built by the same code from O(sources), O(since), O(max_events)
        and O(top), and audit its summary. One module run per host instead of two;
        C(playbooks/oom_report.yml) uses this.
      - Mutually exclusive with O(oom_summary).
    type: bool
    default: false
  max_events:
    description: With O(facts=true), as O(oomguard.memory.oom_facts#module:max_events).
    type: int
    default: 1000
  top:
    description: With O(facts=true), as O(oomguard.memory.oom_facts#module:top).
    type: int
    default: 10
  sources:
    description:
      - Where to read kernel messages when O(oom_summary) is not given; same meaning as
        O(oomguard.memory.oom_facts#module:sources).
    type: list
    elements: str
    default: [auto]
  since:
    description:
      - The start of the window for V(oom_kills) when O(oom_summary) is not given; same forms
        as O(oomguard.memory.oom_facts#module:since) (V(boot), an ISO-8601 time, or an age such as V(24h)).
      - Also shown in the finding's evidence.
    type: str
  critical_processes:
    description:
      - Process names (the C(comm), as C(ps -o comm) prints it, at most 15 characters) the OOM
        killer should spare; each running one with C(oom_score_adj >= 0) is a finding.
      - Extend the default rather than replace it, for example V([sshd, postgres, etcd]).
    type: list
    elements: str
    default: [sshd]
  top_units:
    description:
      - How many of the largest systemd services (by memory use now) to check for a memory limit.
    type: int
    default: 5
  sysctls:
    description:
      - The sysctls the V(sysctl_overrides) check follows through the sysctl.d files.
    type: list
    elements: str
    default: [vm.swappiness, vm.overcommit_memory, vm.overcommit_ratio, vm.panic_on_oom, vm.oom_kill_allocating_task, vm.min_free_kbytes]
  host_role:
    description:
      - What the host is, for the settings a role expects. V(kubernetes) expects
        C(vm.overcommit_memory=1) and C(vm.panic_on_oom=0).
      - V(auto) detects a Kubernetes node by the kubelet's C(/var/lib/kubelet/config.yaml) or
        C(/etc/kubernetes/kubelet.conf).
    type: str
    choices: [auto, generic, kubernetes]
    default: auto
  thresholds:
    description: Where a number becomes a finding (percentages, 0 to 100).
    type: dict
    default: {}
    suboptions:
      commit_percent:
        description: Without swap, C(Committed_AS) at or above this share of C(CommitLimit) is a V(medium) finding.
        type: float
        default: 90
      swap_full_percent:
        description: Swap used at or above this share of the swap space is a V(high) finding.
        type: float
        default: 90
      pressure_full_avg60:
        description: PSI memory C(full avg60) at or above this is V(medium), at twice this V(high).
        type: float
        default: 10
      unit_percent:
        description: An unlimited service using at least this share of RAM is V(medium), a smaller one V(low).
        type: float
        default: 10
notes:
  - Findings of V(overcommit) have no role of this collection to fix them (the collection does
    not manage those two sysctls); the C(text) of their RV(findings[].fix) says what to set.
  - Containers are listed with C(docker|podman ps) and C(inspect) as the user the task runs as;
    rootless containers of other users are not seen.
seealso:
  - module: oomguard.memory.oom_facts
  - name: playbooks/oom_report.yml
    description: Runs this module and M(oomguard.memory.oom_facts) on every host and writes report.json, report.md and junit.xml.
    link: https://github.com/oomguard/memory/blob/main/docs/oom_report.md
'''

EXAMPLES = r'''
- name: Audit the host (reads the kernel logs itself)
  oomguard.memory.memory_audit:
    since: 7d
  register: audit

- name: Reuse the OOM summary of oom_facts, and protect more than sshd
  block:
    - name: Gather OOM facts
      oomguard.memory.oom_facts:
        since: 24h
    - name: Audit with that summary
      oomguard.memory.memory_audit:
        oom_summary: "{{ ansible_facts.oom.summary }}"
        since: 24h
        critical_processes: [sshd, postgres, etcd]
      register: audit

- name: One module run for the OOM facts and the audit (what oom_report.yml does)
  oomguard.memory.memory_audit:
    facts: true
    since: 24h
    top: 5
  register: audit

- name: Fail on high findings
  ansible.builtin.assert:
    that: audit.summary.high == 0
    fail_msg: "{{ audit.findings | selectattr('severity', 'eq', 'high') | map(attribute='message') | list }}"

- name: Only the cheap checks, with a stricter pressure threshold
  oomguard.memory.memory_audit:
    checks: [swap, memory_pressure, overcommit]
    thresholds:
      pressure_full_avg60: 2
'''

RETURN = r'''
findings:
  description: One entry per risk found, the most severe first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description:
        - What was found, stable across versions (V(oom_kills), V(swap_missing), V(swap_full),
          V(critical_unprotected), V(unit_unlimited), V(memory_high_not_below_max),
          V(container_unlimited), V(sysctl_overridden), V(sysctl_not_persistent),
          V(memory_pressure), V(panic_on_oom), V(overcommit_role_conflict), V(overcommit_strict),
          V(overcommit_always)).
      type: str
      sample: critical_unprotected
    check:
      description: The check (one of O(checks)) that found it.
      type: str
      sample: critical_processes
    severity:
      description: V(high), V(medium) or V(low).
      type: str
      sample: medium
    subject:
      description: What it is about (a process name, a unit, a sysctl, V(swap), V(kernel)).
      type: str
      sample: sshd
    message:
      description: One sentence for a human.
      type: str
      sample: sshd (pid 812) has oom_score_adj 0, so the OOM killer may pick it like any other process
    evidence:
      description: The numbers read (sizes in kB or bytes as the key says).
      type: dict
      sample: {pids: [812], oom_score_adj: [0]}
    fix:
      description: How to fix it; C(role) and C(variable) name this collection's role and variable, or are null.
      type: dict
      sample: {role: oomguard.memory.oom_protect, variable: oom_protect_critical, text: protect it with a negative oom_score_adj}
checks:
  description: Every check asked for, in order, with its outcome.
  returned: always
  type: list
  elements: dict
  sample:
    - {id: swap, status: findings, reason: null, findings: 1}
    - {id: memory_pressure, status: ok, reason: null, findings: 0}
    - {id: unit_limits, status: skipped, reason: no systemd unit cgroups in the memory hierarchy, findings: 0}
  contains:
    id:
      description: The check.
      type: str
    status:
      description: V(ok), V(findings) or V(skipped).
      type: str
    reason:
      description: Why it was skipped, or null.
      type: str
    findings:
      description: How many findings it produced.
      type: int
ansible_facts:
  description: With O(facts=true), C(ansible_facts.oom) exactly as M(oomguard.memory.oom_facts) returns it.
  returned: when O(facts=true)
  type: dict
  contains:
    oom:
      description: The facts of M(oomguard.memory.oom_facts) (events, summary, counters, memory, pressure, top_processes); see its documentation.
      type: dict
      returned: when O(facts=true)
      sample: {summary: {events: 0, kills: 0, first: null, last: null, by_victim: {}, by_memcg: {}}}
summary:
  description: Findings per severity, their total, and the worst severity (null without findings).
  returned: always
  type: dict
  sample: {high: 0, medium: 1, low: 2, findings: 3, worst: medium}
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.oomguard.memory.plugins.module_utils import audit, procfs
from ansible_collections.oomguard.memory.plugins.module_utils.oom_sources import (
    OomSourceError, collect_events, parse_since, summarize)
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.oom_state import gather

# Tests point every reader at a fake tree through this.
ROOT = '/'


def argument_spec():
    return dict(
        checks=dict(type='list', elements='str', choices=list(audit.CHECKS)),
        oom_summary=dict(type='dict'),
        facts=dict(type='bool', default=False),
        max_events=dict(type='int', default=1000),
        top=dict(type='int', default=10),
        sources=dict(type='list', elements='str', default=['auto']),
        since=dict(type='str'),
        critical_processes=dict(type='list', elements='str', default=['sshd']),
        top_units=dict(type='int', default=5),
        sysctls=dict(type='list', elements='str', default=list(audit.MANAGED_SYSCTLS)),
        host_role=dict(type='str', default='auto', choices=['auto', 'generic', 'kubernetes']),
        thresholds=dict(type='dict', default={}, options=dict(
            (name, dict(type='float', default=value)) for name, value in audit.DEFAULT_THRESHOLDS.items())),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[('facts', 'oom_summary')])
    params = module.params
    for name in ('max_events', 'top'):
        if params[name] < 0:
            module.fail_json(msg='%s must be 0 or more, got %d' % (name, params[name]))

    def run_command(argv):
        return module.run_command(argv, environ_update={'LC_ALL': 'C'})

    def collect_oom(since_text):
        if not params['sources']:
            raise audit.AuditError('sources is empty; name at least one source, or leave it out for auto')
        try:
            boot_time = procfs.read_boot_time(ROOT)
        except procfs.ProcError:
            boot_time = None
        now = time.time()
        since = parse_since(since_text, now=now, boot_time=boot_time) if since_text else None
        return summarize(collect_events(params['sources'], run_command, module.warn, since=since, root=ROOT,
                                        boot_time=boot_time))

    try:
        audit.validate(params)
        facts = None
        if params['facts']:
            if not params['sources']:
                raise audit.AuditError('sources is empty; name at least one source, or leave it out for auto')
            facts = gather(dict(params, details=[]), run_command, module.warn, ROOT)
            params = dict(params, oom_summary=facts['summary'])
        result = audit.Audit(params, run_command, module.get_bin_path, module.warn, collect_oom, root=ROOT).run()
    except (OomguardError, OomSourceError, ValueError, procfs.ProcError) as exc:
        module.fail_json(msg=str(exc))
    if facts is not None:
        result['ansible_facts'] = {'oom': facts}
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
