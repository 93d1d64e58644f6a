#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: runaway
short_description: Stop the one process that is eating the memory, chosen by rules you can read
version_added: 0.1.0
description:
  - Chooses a process by readable rules (the largest resident memory, RSS, optionally narrowed to a name, command
    line or systemd unit pattern, or one explicit pid) and stops it with C(SIGTERM), then C(SIGKILL) after O(grace)
    seconds if it is still there.
  - A process that belongs to a systemd C(.service) unit is stopped through systemd instead of a raw signal
    (O(unit_action)), so systemd knows what happened and its restart policy applies.
  - "Never touches: PID 1, kernel threads, zombies, the SSH daemon (C(sshd), C(sshd-session), C(sshd-auth), or a
    process of C(ssh.service)/C(sshd.service)), the process running the task and its ancestors, a process with
    C(oom_score_adj) below 0, a process on the critical list O(protect), a process younger than O(min_age) or
    smaller than O(min_rss). Each matching process is listed in RV(candidates) with its verdict and the reason."
  - When no process qualifies, nothing is done and the task reports C(changed=false) with the reasons.
  - In check mode it reports the process it would stop and the steps it would take, and sends nothing.
author: oomguard developers (@oomguard)
extends_documentation_fragment: [oomguard.memory.attributes.platform]
options:
  pid:
    description:
      - Consider this process only. The refusal rules still apply.
    type: int
  process:
    description:
      - Only processes whose name or command line (see O(match)) contains a match of this regular expression.
    type: str
  match:
    description:
      - What O(process) is searched in, the 15-character kernel name V(comm) or the whole V(cmdline).
    type: str
    choices: [comm, cmdline]
    default: comm
  unit:
    description:
      - Only processes of a systemd unit whose name contains a match of this regular expression (for example
        V(^batch-.*\\.service$)).
    type: str
  min_rss:
    description:
      - Never stop a process whose resident memory is below this size (bytes, or a size such as V(256M)).
    type: str
    default: 256M
  min_age:
    description:
      - Never stop a process that started less than this many seconds ago.
    type: int
    default: 300
  protect:
    description:
      - The critical list, in the shape of the C(oomguard.memory.oom_protect) role's C(oom_protect_critical); matching
        processes are never stopped.
    type: list
    elements: dict
    default: []
    suboptions:
      unit:
        description: A systemd unit (V(.service) is added when no type is given).
        type: str
      process:
        description: A regular expression searched in the process name or command line.
        type: str
      match:
        description: What C(process) is searched in.
        type: str
        choices: [comm, cmdline]
        default: comm
      value:
        description: Ignored here (the role's oom_score_adj value), accepted so the role's list can be passed as is.
        type: int
      children:
        description: Ignored here, accepted so the role's list can be passed as is.
        type: bool
      live:
        description: Ignored here, accepted so the role's list can be passed as is.
        type: bool
  grace:
    description:
      - Seconds between C(SIGTERM) and C(SIGKILL) (or between C(systemctl kill) with each signal).
    type: int
    default: 10
  unit_action:
    description:
      - For a process of a systemd C(.service) on a host where systemd is PID 1. V(restart) runs
        C(systemctl restart) (systemd stops the whole unit, SIGKILL after its C(TimeoutStopSec), and starts it
        again fresh); V(kill) runs C(systemctl kill --signal=SIGTERM) for the whole unit and C(SIGKILL) after
        O(grace), leaving the restart to the unit's C(Restart=) policy; V(signal) signals the process alone like
        any other.
    type: str
    choices: [restart, kill, signal]
    default: restart
attributes:
  check_mode:
    description: Reports the process it would stop and the signals or systemctl commands it would send; sends nothing.
    support: full
  diff_mode:
    description: A process is not a file or a setting; RV(candidates) and RV(actions) say what changes.
    support: none
notes:
  - Needs root to signal other users' processes.
seealso:
  - module: oomguard.memory.oom_facts
  - module: oomguard.memory.drop_caches
'''

EXAMPLES = r'''
- name: Stop the largest process above 1 GiB, sparing the critical list of oom_protect
  oomguard.memory.runaway:
    min_rss: 1G
    protect: "{{ oom_protect_critical }}"

- name: Stop the largest java process of the batch units, through systemd
  oomguard.memory.runaway:
    process: ^java$
    unit: ^batch-.*\.service$
    unit_action: kill
    grace: 30

- name: Which process would be stopped, and why the others would not (changes nothing)
  oomguard.memory.runaway:
  check_mode: true
  register: runaway_plan
'''

RETURN = r'''
rules:
  description: The selection and refusal rules, in words, in the order they are applied.
  returned: always
  type: list
  elements: str
  sample: ["choose: the largest resident memory (RSS) among all user processes", "never: PID 1, kernel threads, zombies"]
candidates:
  description: The processes the selection matched, largest RSS first (at most 20), each with its verdict
    (V(chosen), V(eligible) or V(refused)) and, when refused, the reason.
  returned: always
  type: list
  elements: dict
  sample: [{pid: 4242, name: java, rss_kb: 3145728, age_s: 7200, oom_score_adj: 0, unit: batch-import.service,
            verdict: chosen, reason: null},
           {pid: 812, name: postgres, rss_kb: 1048576, age_s: 86400, oom_score_adj: -900, unit: postgresql.service,
            verdict: refused, reason: "oom_score_adj -900 is below 0: marked as protected"}]
stopped:
  description: The process stopped (or that would be stopped in check mode), or null when none qualified.
  returned: always
  type: dict
  contains:
    pid: {description: Its pid., type: int}
    name: {description: Its name (comm)., type: str}
    rss_kb:
      description: Its resident memory before it was stopped, in kB.
      type: int
    unit:
      description: Its systemd unit, or null.
      type: str
    method: {description: V(signal) or V(systemctl)., type: str}
    signals: {description: The signals sent (raw signal method)., type: list, elements: str}
    commands: {description: The systemctl commands run (systemctl method)., type: list, elements: str}
    exited: {description: Whether it is gone (null in check mode)., type: bool}
    seconds: {description: How long stopping it took., type: float}
verdicts:
  description: RV(candidates) as one line each, for people.
  returned: always
  type: list
  elements: str
  sample: ["pid 4242 java (3072.0 MiB RSS, 7200 s old, unit batch-import.service): chosen",
           "pid 812 postgres (1024.0 MiB RSS, 86400 s old): refused, oom_score_adj -900 is below 0: marked as protected"]
actions:
  description: What was done, or would be done in check mode, in order.
  returned: always
  type: list
  elements: str
  sample: ["SIGTERM pid 4242 (java, 3072.0 MiB RSS)", "SIGKILL pid 4242 if still running after 10 s"]
msg:
  description: One sentence on the outcome.
  returned: always
  type: str
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.oomguard.memory.plugins.module_utils import runaway, systemd
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.procfs import ProcError
from ansible_collections.oomguard.memory.plugins.module_utils.processes import TargetError
from ansible_collections.oomguard.memory.plugins.module_utils.sizes import SizeError, parse_size

# Tests point the /proc readers at a fake tree; never a user option.
ROOT = '/'
MAX_CANDIDATES = 20


def argument_spec():
    return dict(
        pid=dict(type='int'),
        process=dict(type='str'),
        match=dict(type='str', default='comm', choices=['comm', 'cmdline']),
        unit=dict(type='str'),
        min_rss=dict(type='str', default='256M'),
        min_age=dict(type='int', default=300),
        protect=dict(type='list', elements='dict', default=[], options=dict(
            unit=dict(type='str'), process=dict(type='str'),
            match=dict(type='str', default='comm', choices=['comm', 'cmdline']),
            value=dict(type='int'), children=dict(type='bool'), live=dict(type='bool'))),
        grace=dict(type='int', default=10),
        unit_action=dict(type='str', default='restart', choices=['restart', 'kill', 'signal']),
    )


def build_rules(params):
    for name in ('min_age', 'grace'):
        if params[name] < 0:
            raise runaway.RunawayError('%s must be 0 or more, got %d' % (name, params[name]))
    if params['pid'] is not None and (params['process'] or params['unit']):
        raise runaway.RunawayError('pid names one process; leave out process and unit, or leave out pid')
    min_rss = parse_size(params['min_rss'], name='min_rss')
    try:
        return runaway.Rules(pid=params['pid'], process=params['process'], match=params['match'],
                             unit=params['unit'], min_rss_kb=min_rss // 1024, min_age_s=params['min_age'],
                             protect=params['protect'])
    except TargetError as exc:
        raise runaway.RunawayError(str(exc))


def plan_steps(row, method, unit, params):
    label = '%s pid %d (%s, %s RSS)' % ('%s', row['pid'], row['name'], runaway.mib(row['rss_kb']))
    if method == 'signal':
        return [label % 'SIGTERM', 'SIGKILL pid %d if still running after %d s' % (row['pid'], params['grace'])]
    if params['unit_action'] == 'restart':
        return ['systemctl restart %s (holds pid %d, %s, %s RSS)' % (unit, row['pid'], row['name'],
                                                                     runaway.mib(row['rss_kb']))]
    return ['systemctl kill --kill-whom=all --signal=SIGTERM %s (holds pid %d)' % (unit, row['pid']),
            'systemctl kill --kill-whom=all --signal=SIGKILL %s if pid %d still runs after %d s'
            % (unit, row['pid'], params['grace'])]


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        rules = build_rules(params)
        rows = runaway.snapshot(ROOT)
        own = set(runaway.ancestors(rows, os.getpid()))
        candidates = runaway.evaluate(rows, rules, own)
    except (OomguardError, SizeError, ProcError) as exc:
        module.fail_json(msg=str(exc))
    result = {'rules': rules.describe(), 'candidates': candidates[:MAX_CANDIDATES], 'stopped': None, 'actions': [],
              'verdicts': [runaway.verdict_line(c) for c in candidates[:MAX_CANDIDATES]]}
    chosen = next((c for c in candidates if c['verdict'] == 'chosen'), None)
    if chosen is None:
        refused = [c for c in candidates if c['verdict'] == 'refused']
        reasons = '; '.join('pid %d (%s): %s' % (c['pid'], c['name'], c['reason']) for c in refused[:5])
        result['msg'] = 'no process qualifies: %s' % reasons if candidates else 'no process matches the selection'
        module.exit_json(changed=False, **result)

    row = rows[chosen['pid']]
    unit = row.get('unit')
    use_systemd = (params['unit_action'] != 'signal' and unit is not None and unit.endswith(runaway.SERVICE_SUFFIX)
                   and systemd.booted(ROOT))
    method = 'systemctl' if use_systemd else 'signal'
    result['actions'] = plan_steps(row, method, unit, params)
    stopped = {'pid': row['pid'], 'name': row['name'], 'rss_kb': row['rss_kb'], 'unit': unit, 'method': method,
               'signals': [], 'commands': [], 'exited': None, 'seconds': 0.0}
    result['stopped'] = stopped
    if module.check_mode:
        result['msg'] = 'would stop pid %d (%s, %s RSS)' % (row['pid'], row['name'], runaway.mib(row['rss_kb']))
        module.exit_json(changed=True, **result)

    def systemctl(args):
        path = module.get_bin_path('systemctl', required=True)
        rc, out, err = module.run_command([path] + args, environ_update={'LC_ALL': 'C'})
        if rc != 0:
            raise runaway.RunawayError('systemctl %s failed (rc=%d): %s' % (' '.join(args), rc, (err or out).strip()))

    try:
        if use_systemd:
            stopped.update(runaway.stop_unit(row, unit, params['unit_action'], params['grace'], systemctl, ROOT))
        else:
            stopped.update(runaway.stop_process(row, params['grace'], ROOT))
    except (OomguardError, ProcError) as exc:
        result.pop('msg', None)
        module.fail_json(msg=str(exc), changed=True, **result)
    if not stopped['exited']:
        result.pop('msg', None)
        module.fail_json(msg='pid %d (%s) is still running after %s; it may be stuck in the kernel (state D)'
                         % (row['pid'], row['name'], ', '.join(stopped['signals'] or stopped['commands'])),
                         changed=True, **result)
    result['msg'] = 'stopped pid %d (%s, %s RSS) with %s' % (
        row['pid'], row['name'], runaway.mib(row['rss_kb']),
        ' then '.join(stopped['signals']) if method == 'signal' else '; '.join(stopped['commands']))
    module.exit_json(changed=True, **result)


if __name__ == '__main__':
    main()
