#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: oom_drill
short_description: An OOM fire drill - a memory hog killed inside its own limit, and proof that nothing else was hurt
version_added: 0.1.0
description:
  - Starts a memory hog (C(stress-ng) when the host has it, otherwise a small Python allocator) inside a memory
    limit of its own, lets the kernel's OOM killer kill it there, and checks that the box held.
  - "The box: a cgroup v1 memory cgroup with C(memory.limit_in_bytes) and, with swap on, C(memory.memsw.limit_in_bytes)
    (so the hog cannot page out and live on); on cgroup v2 with systemd, a transient scope
    (C(systemd-run --scope -p MemoryMax= -p MemorySwapMax=0 --collect)); on cgroup v2 without systemd, a cgroup
    with C(memory.max) and C(memory.swap.max=0)."
  - "Before it starts, it refuses, with a report naming what is missing, when: a critical service of O(critical) is
    not running or not protected (C(oom_score_adj) above its ceiling), the hog cannot be confined (no memory
    controller, no swap accounting while swap is on, systemd missing for a scope), or O(limit) is more than a quarter
    of C(MemAvailable). The hog's launcher waits until the drill has seen it inside the limit before it allocates
    anything; if it is not, it is killed unallocated and the drill refuses."
  - "It proves, as RV(checks): the hog was OOM-killed inside its limit (the cgroup's C(oom_kill) counter and
    C(/proc/vmstat oom_kill) went up, peak usage within the limit); the critical services still run with the same
    PIDs; C(MemAvailable) came back; nothing is left behind (cgroup, scope unit, hog process). Whether
    M(oomguard.memory.oom_facts) reports the kill with RV(cgroup) is checked by the drill playbook, which also
    writes the report."
  - One drill at a time per host (a host-wide lock).
  - In check mode it runs the refusal checks, and reports what it would do or why it would refuse; it starts nothing.
author: oomguard developers (@oomguard)
extends_documentation_fragment: [oomguard.memory.attributes.platform]
options:
  limit:
    description:
      - The hog's memory limit (bytes, or a size such as V(64M)). At least V(16M), and at most a quarter of
        C(MemAvailable).
    type: str
    default: 64M
  hog_size:
    description:
      - How much the hog tries to allocate; V(auto) is four times O(limit). Must be more than O(limit).
    type: str
    default: auto
  hog:
    description:
      - V(auto) uses C(stress-ng) when it is on the PATH, otherwise the Python allocator; V(stress-ng) requires it;
        V(python) always uses the allocator (the Python that runs the module).
    type: str
    choices: [auto, stress-ng, python]
    default: auto
  backend:
    description:
      - Where the hog is confined. V(auto) picks a systemd scope on cgroup v2 with systemd as PID 1, the v1 memory
        hierarchy where the memory controller is on cgroup v1 (hybrid hosts too), and a raw v2 cgroup otherwise.
    type: str
    choices: [auto, cgroup_v1, cgroup_v2, systemd_scope]
    default: auto
  critical:
    description:
      - Services that must survive the drill untouched and must be protected before it starts.
      - Each item names exactly one of C(unit) or C(process), in the shape of the C(oomguard.memory.oom_protect)
        role's C(oom_protect_critical) (its C(value), C(children) and C(live) keys are accepted and ignored).
    type: list
    elements: dict
    default: []
    suboptions:
      unit:
        description: A systemd unit (V(.service) is added when no type is given); its processes are those of its cgroup.
        type: str
      process:
        description: A regular expression searched in the process name or command line.
        type: str
      match:
        description: What C(process) is searched in, V(comm) or V(cmdline).
        type: str
        choices: [comm, cmdline]
        default: comm
      max_oom_score_adj:
        description:
          - The item counts as protected when every one of its processes has C(oom_score_adj) at or below this.
            V(-1) (any negative value, what C(oom_protect) sets) unless a host cannot hold negative values at all
            (containers without C(CAP_SYS_RESOURCE)); there the drill can only show that confinement alone spared it.
        type: int
        default: -1
      value:
        description: Ignored (the oom_protect role's value).
        type: int
      children:
        description: Ignored (the oom_protect role's key).
        type: bool
      live:
        description: Ignored (the oom_protect role's key).
        type: bool
  ssh:
    description:
      - Treat the running SSH daemon (its listener, the C(sshd) started by PID 1) as critical too, with ceiling V(-1).
        Its per-connection processes are not checked (OpenSSH gives them back the daemon's original
        C(oom_score_adj) on purpose). Nothing is checked when no SSH daemon runs.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the OOM killer. A hog still alive then is killed and the drill fails.
    type: int
    default: 60
  settle:
    description:
      - Seconds to wait after the kill for C(MemAvailable) to come back within O(tolerance) of its value before.
    type: int
    default: 15
  tolerance:
    description:
      - How far below its value before C(MemAvailable) may be after the drill and still count as returned (a size,
        or a percentage of C(MemTotal)); other work on the host moves it too.
    type: str
    default: 5%
attributes:
  check_mode:
    description: Runs every refusal check and reports the drill it would run, or why it would refuse; starts nothing.
    support: full
  diff_mode:
    description: The drill leaves nothing behind to show; RV(checks) says what happened.
    support: none
notes:
  - Needs root. Run it on canary hosts only (the drill playbook refuses other hosts).
  - A refusal is not a task failure; RV(status) is V(refused) and RV(checks) names what is missing, so the report can
    still be written. The drill playbook fails the host afterwards.
seealso:
  - module: oomguard.memory.oom_facts
  - module: oomguard.memory.oom_score_adj
'''

EXAMPLES = r'''
- name: OOM fire drill, sparing PostgreSQL and SSH
  oomguard.memory.oom_drill:
    limit: 64M
    critical:
      - unit: postgresql.service
  register: drill

- name: Fail unless it passed
  ansible.builtin.assert:
    that: drill.status == 'passed'
    fail_msg: "{{ drill.msg }}"
'''

RETURN = r'''
status:
  description: V(passed), V(failed), V(refused) (nothing was started), or V(planned) (check mode, would run).
  returned: always
  type: str
  sample: passed
msg:
  description: One sentence on the outcome, naming the failed checks or the missing protection.
  returned: always
  type: str
checks:
  description: Each check with whether it passed and what was seen.
  returned: always
  type: list
  elements: dict
  sample: [{name: hog_oom_killed_in_limit, passed: true,
            detail: "pid 4242 killed by SIGKILL; cgroup oom_kill 0 -> 1, /proc/vmstat oom_kill 7 -> 8; peak 64M of 64M"}]
backend:
  description: V(cgroup_v1), V(cgroup_v2) or V(systemd_scope).
  returned: always
  type: str
cgroup:
  description: The hog's memory cgroup as the kernel prints it in C(oom_memcg=), or null when nothing was started.
  returned: always
  type: str
  sample: /oomguard-drill-1a2b3c4d
limit_bytes:
  description: The limit in bytes.
  returned: always
  type: int
hog:
  description: The hog (kind, size_bytes, pid, returncode, argv).
  returned: always
  type: dict
critical:
  description: Each critical item with its pids, their oom_score_adj, whether protected, and the problem if any.
  returned: always
  type: list
  elements: dict
before:
  description: Memory evidence before the drill (as M(oomguard.memory.memory_state) returns it).
  returned: always
  type: dict
after:
  description: Memory evidence after the drill, or null when nothing ran.
  returned: always
  type: dict
started_at:
  description: When the hog was started (UTC, ISO-8601), or null.
  returned: always
  type: str
actions:
  description: What was done, or would be done in check mode, in order.
  returned: always
  type: list
  elements: str
'''

import subprocess
import sys
import time
import uuid

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.oomguard.memory.plugins.module_utils import drill, procfs
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.evidence import memory_evidence
from ansible_collections.oomguard.memory.plugins.module_utils.files import FileError, host_lock
from ansible_collections.oomguard.memory.plugins.module_utils.processes import TargetError, process_table
from ansible_collections.oomguard.memory.plugins.module_utils.sizes import SizeError, parse_size
from ansible_collections.oomguard.memory.plugins.module_utils.systemd import booted

# Tests point the /proc readers at a fake tree; never a user option.
ROOT = '/'
MIN_LIMIT = 16 * 1024 * 1024
# The SSH daemon's listener: the sshd that PID 1 started. The per-connection sshd processes go back
# to the oom_score_adj the daemon started with (OpenSSH does that on purpose), so they are not checked.
SSH_ITEM = {'process': r'^sshd$', 'match': 'comm', 'ppid': 1, 'max_oom_score_adj': -1, 'ssh': True}


def argument_spec():
    return dict(
        limit=dict(type='str', default='64M'),
        hog_size=dict(type='str', default='auto'),
        hog=dict(type='str', default='auto', choices=['auto', 'stress-ng', 'python']),
        backend=dict(type='str', default='auto', choices=['auto', 'cgroup_v1', 'cgroup_v2', 'systemd_scope']),
        critical=dict(type='list', elements='dict', default=[], options=dict(
            unit=dict(type='str'), process=dict(type='str'),
            match=dict(type='str', default='comm', choices=['comm', 'cmdline']),
            max_oom_score_adj=dict(type='int', default=-1),
            value=dict(type='int'), children=dict(type='bool'), live=dict(type='bool'))),
        ssh=dict(type='bool', default=True),
        timeout=dict(type='int', default=60),
        settle=dict(type='int', default=15),
        tolerance=dict(type='str', default='5%'),
    )


def iso_now():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


class Drill(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.name = 'oomguard-drill-%s' % uuid.uuid4().hex[:8]
        self.result = {'status': None, 'msg': '', 'checks': [], 'backend': None, 'cgroup': None, 'limit_bytes': None,
                       'hog': {}, 'critical': [], 'before': None, 'after': None, 'started_at': None, 'actions': []}

    def run_command(self, argv):
        path = self.module.get_bin_path(argv[0])
        if path is None:
            return 127, '', '%s not found' % argv[0]
        return self.module.run_command([path] + argv[1:], environ_update={'LC_ALL': 'C'})

    # ---- plan and refusals

    def validate(self):
        self.limit, self.hog_size = drill.check_options(self.params, MIN_LIMIT)
        self.result['limit_bytes'] = self.limit

    def choose_hog(self):
        stress_ng = self.module.get_bin_path('stress-ng')
        kind = self.params['hog']
        if kind == 'auto':
            kind = 'stress-ng' if stress_ng else 'python'
        if kind == 'stress-ng' and not stress_ng:
            return None, ['hog: stress-ng was asked for but is not on the PATH; install it or use hog: python']
        self.hog_kind = kind
        self.argv = drill.hog_command(kind, self.hog_size, self.params['timeout'], self.name, sys.executable, stress_ng)
        self.result['hog'] = {'kind': kind, 'size_bytes': self.hog_size, 'pid': None, 'returncode': None,
                              'argv': ['<launcher>' if a == drill.GATE else a for a in self.argv]}
        return kind, []

    def confinement(self, evidence):
        layout = procfs.detect_cgroup_layout(ROOT)
        systemd_booted = booted(ROOT)
        backend = drill.choose_backend(self.params['backend'], layout, systemd_booted)
        self.result['backend'] = backend
        swap_on = bool(evidence['swap_total_kb'])
        if backend == 'cgroup_v1':
            if layout['memory_version'] != 'v1':
                return None, ['backend cgroup_v1: this host has no cgroup v1 memory hierarchy']
            box = drill.CgroupV1(layout['memory_root'], self.name, self.limit, swap_on, ROOT)
        elif backend == 'cgroup_v2':
            if layout['memory_version'] != 'v2':
                return None, ['backend cgroup_v2: the memory controller is not on a cgroup v2 hierarchy here (%s)'
                              % (('it is on cgroup %s' % layout['memory_version']) if layout['memory_version']
                                 else 'no hierarchy has it')]
            box = drill.CgroupV2(layout['memory_root'], self.name, self.limit, swap_on, ROOT)
        else:
            box = drill.SystemdScope(layout['unified_root'], self.name, self.limit, swap_on, self.run_command, ROOT)
        return box, box.preflight()

    def critical_items(self):
        items = [dict(item) for item in self.params['critical']]
        if self.params['ssh']:
            items.append(dict(SSH_ITEM))
        return items

    def show_control_group(self, unit):
        rc, out, err = self.run_command(['systemctl', 'show', unit, '--property=ControlGroup'])
        if rc != 0:
            return None
        return out.strip().partition('=')[2] or None

    def preflight(self):
        problems = []
        self.before = memory_evidence(ROOT, self.module.warn)
        self.result['before'] = self.before
        if self.limit * 4 > self.before['mem_available_kb'] * 1024:
            problems.append('limit %s is more than a quarter of MemAvailable (%s): a drill must not press the host'
                            % (drill.mib(self.limit), drill.mib(self.before['mem_available_kb'] * 1024)))
        _kind, hog_problems = self.choose_hog()
        problems += hog_problems
        self.box, box_problems = self.confinement(self.before)
        problems += ['the hog cannot be confined: %s' % p for p in box_problems]
        table = process_table(ROOT)
        show = self.show_control_group if booted(ROOT) else None
        items = self.critical_items()
        status = [entry for item, entry in zip(items, drill.critical_status(items, table, ROOT, show))
                  # The SSH item is only checked where an SSH daemon runs.
                  if not (item.get('ssh') and not entry['pids'])]
        self.critical = status
        self.result['critical'] = [dict((k, v) for k, v in s.items() if k != 'starttimes') for s in status]
        problems += [s['problem'] for s in status if s['problem']]
        return problems

    # ---- the drill

    def start(self):
        self.box.create()
        self.result['actions'].append('created %s' % self.box.describe())
        try:
            proc = self.box.spawn(self.argv)
        except (OSError, subprocess.SubprocessError, OomguardError) as exc:
            return 'the hog could not be started inside %s: %s' % (self.box.describe(), exc)
        self.proc = proc
        self.result['hog']['pid'] = proc.pid
        try:
            problem = self.box.verify(proc.pid)
        except procfs.ProcError as exc:
            problem = 'cannot check where pid %d is: %s' % (proc.pid, exc)
        self.result['cgroup'] = self.box.cgroup
        if problem:
            proc.kill()
            proc.wait()
            self.result['actions'].append('killed the unallocated hog pid %d: %s' % (proc.pid, problem))
            return problem
        self.result['started_at'] = iso_now()
        self.counters_before = self.box.counters()
        self.vmstat_before = (procfs.read_vmstat(ROOT) or {}).get('oom_kill')
        proc.stdin.write(b'go\n')
        proc.stdin.close()
        self.result['actions'].append('started the %s hog (pid %d, %s) in %s'
                                      % (self.hog_kind, proc.pid, drill.mib(self.hog_size), self.box.cgroup))
        return None

    def wait(self):
        # Poll rather than block: the peak usage is sampled while the box exists (a systemd scope
        # and its memory.peak are gone as soon as the hog is).
        deadline = time.monotonic() + self.params['timeout']
        peak = None
        while self.proc.poll() is None and time.monotonic() < deadline:
            sample = self.box.counters().get('peak_bytes')
            peak = sample if peak is None or (sample or 0) > peak else peak
            time.sleep(0.05)
        timed_out = self.proc.poll() is None
        if timed_out:
            drill._kill_all(self.box.procs() + [self.proc.pid])
        returncode = self.proc.wait()
        self.result['hog']['returncode'] = returncode
        # stress-ng's parent outlives its worker for a moment; the cgroup must be empty before the counters count.
        deadline = time.monotonic() + 10
        while self.box.procs() and time.monotonic() < deadline:
            time.sleep(0.1)
        counters = self.box.counters()
        if counters.get('peak_bytes') is None:
            counters['peak_bytes'] = peak
        vmstat_after = (procfs.read_vmstat(ROOT) or {}).get('oom_kill')
        return timed_out, returncode, counters, vmstat_after

    def judge_kill(self, timed_out, returncode, counters, vmstat_after):
        before = self.counters_before.get('oom_kill') or 0
        after = counters.get('oom_kill')
        peak = counters.get('peak_bytes')
        parts = ['hog pid %d %s' % (self.proc.pid, 'still alive at the timeout (%d s)' % self.params['timeout']
                                    if timed_out else 'ended with %s' % drill.describe_exit(returncode))]
        parts.append('cgroup oom_kill %s -> %s' % (before, after))
        parts.append('/proc/vmstat oom_kill %s -> %s' % (self.vmstat_before, vmstat_after))
        within = peak is None or peak <= self.limit
        parts.append('peak usage %s of %s' % (drill.mib(peak), drill.mib(self.limit)) if peak is not None
                     else 'peak usage not readable after the scope ended')
        killed_by_oom = (not timed_out and after is not None and after > before
                         and (self.vmstat_before is None or (vmstat_after or 0) > self.vmstat_before))
        if self.hog_kind == 'python':
            killed_by_oom = killed_by_oom and returncode == -9
        return drill.check('hog_oom_killed_in_limit', killed_by_oom and within, '; '.join(parts))

    def settle_available(self):
        mem_total = self.before['mem_total_kb'] * 1024
        tolerance = parse_size(self.params['tolerance'], name='tolerance', allow_percent=True, total=mem_total)
        wanted = self.before['mem_available_kb'] * 1024 - tolerance
        deadline = time.monotonic() + self.params['settle']
        while True:
            after = memory_evidence(ROOT, self.module.warn)
            if after['mem_available_kb'] * 1024 >= wanted or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        self.result['after'] = after
        return drill.check('mem_available_returned', after['mem_available_kb'] * 1024 >= wanted,
                           'MemAvailable %s before, %s after (tolerance %s)'
                           % (drill.mib(self.before['mem_available_kb'] * 1024),
                              drill.mib(after['mem_available_kb'] * 1024), drill.mib(tolerance)))

    def execute(self):
        checks = self.result['checks']
        checks.append(drill.check('critical_protected', True, drill.protected_detail(self.critical)))
        try:
            problem = self.start()
            if problem:
                checks.append(drill.check('hog_confined', False, problem))
                return 'refused'
            checks.append(drill.check('hog_confined', True, 'pid %d in %s (memory limit %s, %s) before it allocated '
                                      'anything' % (self.proc.pid, self.box.cgroup, drill.mib(self.limit),
                                                    'swap limited too' if self.box.swap_on else 'no swap on the host')))
            checks.append(self.judge_kill(*self.wait()))
        finally:
            removed = self.box.remove()
            if self.result['hog'].get('pid'):
                drill._kill_all(drill.marker_processes(self.name, ROOT))
            self.result['actions'].append('removed %s' % self.box.describe() if removed
                                          else 'could not remove %s' % self.box.describe())
        lost = drill.survivors(self.critical, ROOT)
        checks.append(drill.check('critical_unchanged', not lost, '; '.join(lost) if lost else
                                  'every critical process runs with the same pid: %s' % drill.pid_summary(self.critical)))
        checks.append(self.settle_available())
        left = self.box.leftovers() + ['hog process %d' % pid for pid in drill.marker_processes(self.name, ROOT)]
        checks.append(drill.check('nothing_left_behind', not left, ', '.join(left) if left else
                                  'no cgroup, scope unit or hog process remains'))
        return drill.verdict(checks)

    def main(self):
        self.validate()
        problems = self.preflight()
        if problems:
            self.result['checks'] = [drill.check('preflight', False, p) for p in problems]
            self.result['status'] = 'refused'
            self.result['msg'] = 'drill refused, nothing was started: %s' % '; '.join(problems)
            return False
        if self.module.check_mode:
            self.result['status'] = 'planned'
            self.result['actions'] = ['create %s' % self.box.describe(),
                                      'start the %s hog (%s) in it and wait up to %d s for the OOM killer'
                                      % (self.hog_kind, drill.mib(self.hog_size), self.params['timeout']),
                                      'remove %s and check what is left' % self.box.describe()]
            self.result['checks'] = [drill.check('critical_protected', True, drill.protected_detail(self.critical))]
            self.result['msg'] = 'would run the drill in %s' % self.box.describe()
            return True
        with host_lock('oom-drill', timeout=120):
            self.result['status'] = self.execute()
        failed = [c for c in self.result['checks'] if not c['passed']]
        self.result['msg'] = ('drill passed: the hog was OOM-killed in %s and nothing else was touched' % self.box.cgroup
                              if not failed else 'drill %s: %s' % (self.result['status'], '; '.join(
                                  '%s (%s)' % (c['name'], c['detail']) for c in failed)))
        return True


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    runner = Drill(module)
    try:
        changed = runner.main()
    except (OomguardError, SizeError, TargetError, FileError, procfs.ProcError) as exc:
        details = dict((k, v) for k, v in runner.result.items() if k != 'msg')
        module.fail_json(msg=str(exc), **details)
    module.exit_json(changed=changed, **runner.result)


if __name__ == '__main__':
    main()
