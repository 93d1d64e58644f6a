#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: oom_score_adj
short_description: Choose which processes the OOM killer spares and which it kills first
version_added: 0.1.0
description:
  - Sets C(oom_score_adj) (-1000 never kill .. 1000 kill first) of running processes, now
    (O(live)) and, for a systemd unit, persistently through a drop-in with C(OOMScoreAdjust=)
    (O(persist)), so the value survives restarts and reboots.
  - Targets exactly one of O(pid), O(pidfile), O(process) (a regular expression) or O(unit).
    With O(children), their descendants get the same value.
  - Never touches kernel threads. PID 1 only when named with O(pid=1), and never with its
    descendants (that would be every process).
  - Lowering a value below 0 needs C(CAP_SYS_RESOURCE); without it (containers, some sandboxes)
    the module fails before changing anything, names the processes and says how to get the value
    applied by systemd instead. Raising a value, and lowering it back towards 0, needs no
    capability.
  - Processes that exit while the module runs are skipped, not errors.
author: oomguard developers (@oomguard)
extends_documentation_fragment: [oomguard.memory.attributes, oomguard.memory.systemd]
options:
  value:
    description:
      - The oom_score_adj to set, from -1000 (never kill) to 1000 (kill first).
      - With O(state=absent), the value to take back (processes carrying it return to 0).
    type: int
    required: true
  pid:
    description: One process id or a list of them.
    type: list
    elements: int
  pidfile:
    description:
      - A regular file holding one process id (for example C(/run/nginx.pid)). A file with more
        than one value, a FIFO, a device or a directory is refused.
    type: path
  process:
    description:
      - A Python regular expression searched (not anchored; use C(^...$) for an exact name) in
        the processes' C(comm) or command line, see O(match).
    type: str
  match:
    description:
      - What O(process) is matched against. C(comm) is the kernel's name of the process (at most
        15 characters, as C(ps -o comm) shows); C(cmdline) is the whole command line with its
        arguments joined by spaces.
    type: str
    choices: [comm, cmdline]
    default: comm
  unit:
    description:
      - A systemd unit (C(.service) is added when no type is given); its processes are those in
        its cgroup. Needs systemd as PID 1.
    type: str
  children:
    description:
      - Also set the descendants of the matched processes. New children inherit the value
        from their parent anyway; this covers the ones that already run.
      - For O(unit), V(true) means every process in the unit's cgroup and V(false) its main
        process only; descendants that left the cgroup (the login sessions of C(ssh.service))
        are not the unit's and are left alone. With O(process=sshd) they would be included.
    type: bool
    default: true
  persist:
    description:
      - For O(unit), write the drop-in C(/etc/systemd/system/<unit>.d/50-oomguard-oom-score-adj.conf)
        with C(OOMScoreAdjust=) and run C(systemctl daemon-reload), so systemd applies the value
        every time it starts the unit.
      - For O(pid), O(pidfile) and O(process) there is nothing that could outlive the process;
        the module warns about that; set V(false) to acknowledge.
    type: bool
    default: true
  live:
    description:
      - Apply the value to the running processes now.
      - V(false) is only meaningful with O(unit) (the drop-in alone, applied when the unit
        next starts).
    type: bool
    default: true
  allow_many:
    description:
      - Let O(process) match every user process on the host. Without it a pattern that (with
        O(children)) takes in all user processes, such as C(.*), is refused, since it would change the
        whole host. The module's own process and the Ansible wrappers around it are never
        changed, either way.
    type: bool
    default: false
  keep_stronger:
    description:
      - Leave alone a process whose value already goes further in the same direction as
        O(value), that is lower than a negative O(value) (more protected) or higher than a positive
        one (killed earlier). Such processes keep their value and count as unchanged.
      - For example the OpenSSH listener sets itself to -1000 at start; with O(value=-900) and
        V(true), it stays at -1000 instead of being raised to -900 after every restart of the
        service. The drop-in of O(unit) is written either way.
    type: bool
    default: false
  missing:
    description:
      - What to do when no process matches. V(ignore) returns changed=false for the processes
        with a warning (a unit's drop-in is still written); V(fail) fails.
    type: str
    choices: [ignore, fail]
    default: ignore
  state:
    description:
      - V(present) sets the value. V(absent) removes the module's drop-in (with O(unit)) and puts
        processes that carry O(value) back to 0.
    type: str
    choices: [present, absent]
    default: present
notes:
  - The kernel allows a process without C(CAP_SYS_RESOURCE) to lower oom_score_adj only down to
    a floor set by the last privileged write (0 unless a privileged writer set one). The module
    predicts with a floor of 0 (going below 0, or lower when already negative, needs the
    capability); if the kernel still refuses a write, the processes already changed are put back.
  - -1000 makes a process unkillable by the OOM killer; if it is the one leaking, the kernel
    kills everything else and may panic. Prefer -900 for critical services.
seealso:
  - name: proc(5) oom_score_adj
    description: The kernel's description of the value.
    link: https://man7.org/linux/man-pages/man5/proc_pid_oom_score_adj.5.html
  - name: systemd.exec(5) OOMScoreAdjust=
    description: How systemd applies the value to the processes of a unit.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd.exec.html#OOMScoreAdjust=
'''

EXAMPLES = r'''
- name: Protect the SSH daemon, now and across restarts
  oomguard.memory.oom_score_adj:
    unit: ssh.service
    value: -900

- name: Make the nightly batch job the OOM killer's first choice
  oomguard.memory.oom_score_adj:
    process: '^batch-runner$'
    value: 800
    persist: false

- name: Kill this one (and its workers) first
  oomguard.memory.oom_score_adj:
    pidfile: /run/worker.pid
    value: 500
    persist: false

- name: Prepare the drop-in only; systemd applies it at the next start
  oomguard.memory.oom_score_adj:
    unit: postgresql
    value: -900
    live: false

- name: Undo
  oomguard.memory.oom_score_adj:
    unit: ssh.service
    value: -900
    state: absent
'''

RETURN = r'''
processes:
  description: The processes targeted, with their oom_score_adj before and after (after is read
    back from the kernel on a real run, predicted in check mode). Empty with O(live=false).
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Process id.
      type: int
      sample: 1234
    name:
      description: The process's comm (kernel name).
      type: str
      sample: sshd
    before:
      description: oom_score_adj before the run.
      type: int
      sample: 0
    after:
      description: oom_score_adj after the run.
      type: int
      sample: -900
  sample: [{pid: 1234, name: sshd, before: 0, after: -900}]
dropin:
  description: The path of the module's drop-in for O(unit) with O(persist), else null.
  returned: always
  type: str
  sample: /etc/systemd/system/ssh.service.d/50-oomguard-oom-score-adj.conf
daemon_reload:
  description: Whether C(systemctl daemon-reload) ran (or would run, in check mode).
  returned: always
  type: bool
  sample: true
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oomguard.memory.plugins.module_utils import processes as procs
from ansible_collections.oomguard.memory.plugins.module_utils import systemd
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.files import host_lock
from ansible_collections.oomguard.memory.plugins.module_utils.params import check_path, refuse_bools
from ansible_collections.oomguard.memory.plugins.module_utils.procfs import (
    ProcError, ProcessGone, path_in, read_pid_oom_score_adj)

# Where /proc and /etc are; unit tests point this at a fake tree.
ROOT = '/'
DROPIN_NAME = '50-oomguard-oom-score-adj'
DROPIN_COMMENT = 'Managed by Ansible (oomguard.memory.oom_score_adj); edits here are overwritten.'


def argument_spec():
    return dict(
        value=dict(type='int', required=True),
        pid=dict(type='list', elements='int'),
        pidfile=dict(type='path'),
        process=dict(type='str'),
        match=dict(type='str', choices=['comm', 'cmdline'], default='comm'),
        unit=dict(type='str'),
        children=dict(type='bool', default=True),
        persist=dict(type='bool', default=True),
        live=dict(type='bool', default=True),
        allow_many=dict(type='bool', default=False),
        daemon_reload=dict(type='bool', default=True),
        keep_stronger=dict(type='bool', default=False),
        missing=dict(type='str', choices=['ignore', 'fail'], default='ignore'),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    )


TARGETS = ('pid', 'pidfile', 'process', 'unit')


class OomScoreAdj(object):
    def __init__(self, module, root=None):
        self.module = module
        self.root = ROOT if root is None else root
        self.p = module.params

    # ---- what was asked

    def validate(self):
        p = self.p
        refuse_bools(p, ['value', 'pid'])
        if p['pidfile'] is not None:
            check_path('pidfile', p['pidfile'])
        if not -1000 <= p['value'] <= 1000:
            raise procs.TargetError('value: %d is out of range; oom_score_adj goes from -1000 (never kill) '
                                    'to 1000 (kill first)' % p['value'])
        if p['pid'] is not None:
            if not p['pid']:
                raise procs.TargetError('pid: the list is empty; give at least one process id')
            bad = [pid for pid in p['pid'] if not 1 <= pid <= procs.PID_MAX_LIMIT]
            if bad:
                raise procs.TargetError('pid: %s is not a process id (they go from 1 to %d)'
                                        % (bad[0], procs.PID_MAX_LIMIT))
        if p['process'] is not None:
            if not p['process']:
                raise procs.TargetError('process: the pattern is empty and would match every process')
            if '\x00' in p['process']:
                raise procs.TargetError('process: %r contains a NUL byte, which no process name or command line '
                                        'holds' % p['process'])
            self.regex = procs.compile_pattern(p['process'])
        if p['unit'] is not None:
            self.unit = systemd.validate_unit(p['unit'], types=systemd.EXEC_SECTIONS)
        if not p['live'] and p['unit'] is None:
            raise procs.TargetError('live: false with a pid, pidfile or process target leaves nothing to do; '
                                    'use unit: to set the value only through a systemd drop-in')
        if p['unit'] is not None and not systemd.booted(self.root):
            raise systemd.SystemdError('unit: %s needs systemd as PID 1, and this host was not booted with it '
                                       '(%s is missing); use pid, pidfile or process instead'
                                       % (self.unit, path_in(self.root, '/run/systemd/system')))

    def target_text(self):
        p = self.p
        if p['pid'] is not None:
            return 'pid %s' % ', '.join(str(pid) for pid in p['pid'])
        if p['pidfile'] is not None:
            return 'pidfile %s' % p['pidfile']
        if p['process'] is not None:
            return 'process %r (%s)' % (p['process'], p['match'])
        return 'unit %s' % self.unit

    # ---- what is

    def find_processes(self):
        """[(pid, comm)] of the running targets, and the seeds that were not found."""
        p = self.p
        table = procs.process_table(self.root)
        explicit = False
        if p['pid'] is not None:
            seeds, explicit = list(p['pid']), True
        elif p['pidfile'] is not None:
            seeds = [procs.read_pidfile(p['pidfile'])]
            if seeds == [1]:
                raise procs.TargetError('pidfile: %s names PID 1; ask for it with pid: 1 if you mean it' % p['pidfile'])
            explicit = True
        elif p['process'] is not None:
            seeds = procs.match_pattern(table, self.regex, p['match'], self.root)
        else:
            unit = systemd.show(self.module, self.unit, ['LoadState', 'MainPID', 'ControlGroup'])
            if unit.get('LoadState') == 'not-found':
                raise systemd.SystemdError('unit: systemd knows no unit %s (LoadState=not-found); check the name'
                                           % self.unit)
            # A unit's processes are its cgroup, not its process tree: sshd's login sessions
            # descend from ssh.service but live in session scopes, and must not be protected.
            main_pid = int(unit.get('MainPID') or 0)
            seeds = procs.in_control_group(table, unit.get('ControlGroup'), self.root) if p['children'] else []
            if not seeds and main_pid > 1:
                seeds = [main_pid]
        absent = [pid for pid in seeds if pid not in table] if explicit else []
        own = procs.own_pids(table) if self.root == '/' else set()
        children = p['children'] and p['unit'] is None
        chosen = procs.select_targets(table, seeds, children, explicit=explicit, exclude=own)
        everyone = procs.user_processes(table, exclude=own)
        if p['process'] is not None and not p['allow_many'] and everyone and everyone <= set(chosen):
            raise procs.TargetError('process: %r matches every user process on this host (%d)%s; use a pattern '
                                    'that names the processes you mean, or allow_many: true if you really want '
                                    'all of them' % (p['process'], len(everyone),
                                                     ' with their children' if children else ''))
        return [(pid, table[pid]['comm']) for pid in chosen], absent

    def plan_processes(self, found):
        plan = []
        for pid, name in found:
            try:
                before = read_pid_oom_score_adj(pid, self.root)
            except ProcessGone:
                continue
            if self.p['state'] == 'present':
                after = before if self.p['keep_stronger'] and procs.stronger(before, self.p['value']) else self.p['value']
            else:
                after = 0 if before == self.p['value'] else before
            plan.append({'pid': pid, 'name': name, 'before': before, 'after': after})
        return plan

    def check_capability(self, plan):
        lowering = [item for item in plan if procs.needs_capability(item['before'], item['after'])]
        if not lowering or procs.has_capability(procs.CAP_SYS_RESOURCE, self.root):
            return
        self.module.fail_json(msg=self.denied_message(lowering), processes=plan, dropin=None, daemon_reload=False)

    def denied_message(self, items):
        names = ', '.join('%d (%s, now %d)' % (i['pid'], i['name'], i['before']) for i in items)
        if self.p['unit'] is not None:
            way_out = ('write only the drop-in with live: false and restart %s, so that systemd applies '
                       'OOMScoreAdjust= when it starts the service' % self.unit)
        else:
            way_out = ('set it through the service\'s systemd unit (unit: NAME, live: false) and restart it, '
                       'so that systemd applies OOMScoreAdjust= when it starts the process')
        return ('cannot lower oom_score_adj to %d for pid %s: going below 0 needs CAP_SYS_RESOURCE, which this '
                'process lacks (missing from its effective capability set, as in containers and some VMs); '
                'nothing was changed; %s' % (self.p['value'], names, way_out))

    def plan_dropin(self):
        if self.p['unit'] is None or not self.p['persist']:
            return None, None
        path = systemd.dropin_path(self.unit, DROPIN_NAME, self.root)
        if self.p['state'] == 'absent':
            return path, systemd.remove_dropin(path, check_mode=True)
        text = systemd.render_dropin(systemd.section_for(self.unit), [('OOMScoreAdjust', self.p['value'])],
                                     comment=DROPIN_COMMENT)
        return path, systemd.write_dropin(path, text, check_mode=True)

    # ---- change

    def apply_processes(self, plan):
        done = []
        for item in plan:
            if item['after'] == item['before']:
                continue
            try:
                procs.write_oom_score_adj(item['pid'], item['after'], self.root)
            except ProcessGone:
                item['gone'] = True
                continue
            except procs.AdjustDenied as exc:
                for prev in done:   # put back what this run changed: raising back is always allowed
                    try:
                        procs.write_oom_score_adj(prev['pid'], prev['before'], self.root)
                    except ProcError:
                        pass
                self.module.fail_json(msg='%s (the kernel refused: %s)' % (self.denied_message([item]), exc),
                                      processes=plan, dropin=None, daemon_reload=False)
            done.append(item)
        for item in plan:
            if not item.get('gone'):
                try:
                    item['after'] = read_pid_oom_score_adj(item['pid'], self.root)
                except ProcessGone:
                    item['gone'] = True
        return [i for i in plan if not i.pop('gone', False)]

    def run(self):
        p = self.p
        check = self.module.check_mode
        self.validate()
        if p['persist'] and p['unit'] is None and p['state'] == 'present':
            kind = next(t for t in TARGETS if p[t] is not None)
            self.module.warn('persist: the oom_score_adj of a %s target lives in the kernel only and is lost '
                             'when the process exits or restarts; use unit: to make it survive (a systemd '
                             'drop-in), or persist: false to acknowledge' % kind)
        plan = []
        if p['live']:
            found, absent = self.find_processes()
            if not found or absent:
                what = ('no running process matches %s' % self.target_text() if not found
                        else 'pid %s: no such process' % ', '.join(str(pid) for pid in absent))
                if p['missing'] == 'fail':
                    self.module.fail_json(msg='%s (missing: fail)' % what, processes=[], dropin=None,
                                          daemon_reload=False)
                self.module.warn(what + ('; the drop-in applies when the unit starts' if p['unit'] and p['persist']
                                         else '; nothing to apply now'))
            plan = self.plan_processes(found)
            self.check_capability(plan)
        path, dropin = self.plan_dropin()
        reload_needed = bool(dropin and dropin['changed'])

        if not check:
            plan = self.apply_processes(plan)
            if reload_needed:
                with host_lock('systemd-dropin'):
                    if p['state'] == 'absent':
                        systemd.remove_dropin(path)
                    else:
                        systemd.write_dropin(path, dropin['after'])
                    if p['daemon_reload']:
                        systemd.daemon_reload(self.module)

        changed = reload_needed or any(i['after'] != i['before'] for i in plan)
        result = dict(changed=changed, processes=plan, dropin=path,
                      daemon_reload=reload_needed and p['daemon_reload'])
        if self.module._diff:
            result['diff'] = self.diff(path, dropin, plan)
        self.module.exit_json(**result)

    @staticmethod
    def diff(path, dropin, plan):
        diffs = []
        if dropin is not None:
            diffs.append({'before_header': path, 'after_header': path,
                          'before': dropin['before'] or '', 'after': dropin['after'] or ''})
        if plan:
            line = '/proc/%d/oom_score_adj (%s): %d\n'
            diffs.append({'before_header': 'oom_score_adj', 'after_header': 'oom_score_adj',
                          'before': ''.join(line % (i['pid'], i['name'], i['before']) for i in plan),
                          'after': ''.join(line % (i['pid'], i['name'], i['after']) for i in plan)})
        return diffs


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[TARGETS], required_one_of=[TARGETS])
    try:
        OomScoreAdj(module).run()
    except OomguardError as exc:
        module.fail_json(msg=str(exc), processes=[], dropin=None, daemon_reload=False)


if __name__ == '__main__':
    main()
