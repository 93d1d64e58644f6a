#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file only documents the action plugin plugins/action/oom_report.py, which does the work
# on the controller.

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: oom_report
short_description: Write the fleet OOM report (report.json, report.md, junit.xml) on the controller
version_added: 0.1.0
description:
  - Runs on the controller only (an action plugin; nothing is sent to the hosts). Reads, for every
    host of the play, the results an earlier task registered from M(oomguard.memory.oom_facts)
    (O(facts_var)) and M(oomguard.memory.memory_audit) (O(audit_var)), and a failed task's
    C({task, msg}) (O(error_var)), and writes into O(dest) C(report.json) (schema
    C(oomguard.memory.oom_report), with C(schema_version); one entry per host, unreachable and
    failed hosts included as such), C(report.md) (fleet summary first, then a section per host)
    and C(junit.xml) (a test suite per host, a test case per check).
  - In JUnit, a kill, or a finding at or above the gate's severity, is a C(failure); an unreachable
    or failed host is an C(error); a check that could not run is C(skipped).
  - With O(merge), reads earlier C(report.json) files instead (job slices, C(ansible-pull) hosts)
    and writes one report of all their hosts.
  - Does not fail on the gate itself; it returns RV(failing) and RV(failing_lines) so the play can
    fail the failing hosts after the files are written (what C(playbooks/oom_report.yml) does).
  - Use it with C(run_once=true); files are written with atomic renames.
  - Always reports C(changed=false) - writing the report on the controller changes no managed
    host, so a read-only play still ends with C(changed=0).
author:
  - oomguard developers (@oomguard)
attributes:
  check_mode:
    description: In check mode the report is built and the gate evaluated, but no file is written.
    support: full
  diff_mode:
    description: Does not show diffs.
    support: none
  action:
    description: Runs on the controller.
    support: full
  platform:
    description: Any controller platform.
    support: full
    platforms: posix
options:
  dest:
    description:
      - The directory to write into, created when missing. A relative path is relative to the
        current directory of C(ansible-playbook).
    type: str
    default: ./oom-report
  hosts:
    description: The inventory hosts to report; by default every host of the play (C(ansible_play_hosts_all)).
    type: list
    elements: str
  fail_on:
    description:
      - The gate. V(kills) fails hosts where the OOM killer killed something; V(high), V(medium)
        and V(low) also fail hosts with a finding of at least that severity; V(never) fails nothing.
      - Any other value is an error. Default V(kills).
    type: raw
  fail_on_kills:
    description:
      - Deprecated (the playbook's old C(oom_report_fail_on_kills)); V(true) means O(fail_on=kills),
        V(false) O(fail_on=never). A value that is not a boolean is an error.
    type: raw
  fail_on_unreachable:
    description: Whether unreachable and failed hosts fail the gate (unless O(fail_on=never)). A boolean.
    type: raw
    default: true
  since:
    description: The window the facts were gathered for, recorded in the report.
    type: str
  merge:
    description:
      - C(report.json) files, globs or directories holding one, to merge instead of reading hostvars.
        A host in several files keeps the entry of the newest report.
    type: list
    elements: str
  facts_var:
    description: The variable each host registered the M(oomguard.memory.oom_facts) result in.
    type: str
    default: oom_report_facts
  audit_var:
    description: The variable each host registered the M(oomguard.memory.memory_audit) result in.
    type: str
    default: oom_report_audit
  error_var:
    description: The variable a rescue set to C({task, msg}) when a task failed on the host.
    type: str
    default: oom_report_error
  validate_only:
    description: Only validate the gate options and return RV(fail_on); write nothing.
    type: bool
    default: false
notes:
  - A host is reported under its inventory name, except C(localhost) reached with the local
    connection (C(make run), C(ansible-pull)), which is reported under the machine's host name; set
    C(oom_report_host_name) on a host to choose the name.
seealso:
  - module: oomguard.memory.oom_facts
  - module: oomguard.memory.memory_audit
  - name: The report playbook and the merge step
    description: playbooks/oom_report.yml, playbooks/oom_report_merge.yml and their variables.
    link: https://github.com/oomguard/memory/blob/main/docs/oom_report.md
'''

EXAMPLES = r'''
- name: Gather and audit every host
  hosts: all
  gather_facts: false
  tasks:
    - name: OOM facts
      oomguard.memory.oom_facts:
        top: 5
      register: oom_report_facts
    - name: Audit
      oomguard.memory.memory_audit:
        oom_summary: "{{ oom_report_facts.ansible_facts.oom.summary }}"
      register: oom_report_audit
    - name: Write the report on the controller
      oomguard.memory.oom_report:
        dest: ./oom-report
        fail_on: high
      run_once: true
      register: report
    - name: Fail the hosts the gate fails
      ansible.builtin.fail:
        msg: "{{ report.failing[inventory_hostname] | join('; ') }}"
      when: inventory_hostname in report.failing

- name: Merge the reports of three job slices
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Merge
      oomguard.memory.oom_report:
        merge: [slices/*/report.json]
        dest: ./oom-report
'''

RETURN = r'''
paths:
  description: The files written (or that would be, in check mode).
  returned: unless validate_only
  type: list
  elements: str
  sample: [/srv/ci/oom-report/report.json, /srv/ci/oom-report/report.md, /srv/ci/oom-report/junit.xml]
dest:
  description: The absolute directory.
  returned: unless validate_only
  type: str
fail_on:
  description: The gate in effect after validation.
  returned: always
  type: str
  sample: kills
fail_on_unreachable:
  description: Whether unreachable and failed hosts fail the gate.
  returned: always
  type: bool
fleet:
  description: The fleet summary of report.json (hosts, ok, failed, unreachable, hosts_with_kills, kills, findings per severity, failing).
  returned: unless validate_only
  type: dict
  sample: {hosts: 3, ok: 2, failed: 0, unreachable: 1, hosts_with_kills: 1, kills: 2, findings: {high: 1, medium: 3, low: 0}, failing: [db1, web3]}
failing:
  description: The hosts the gate fails (inventory names), each with the reasons.
  returned: unless validate_only
  type: dict
  sample: {db1: ['2 OOM kill(s) (java x2)']}
failing_lines:
  description: One line per failing host.
  returned: unless validate_only
  type: list
  elements: str
  sample: ['db1: 2 OOM kill(s) (java x2)']
'''
