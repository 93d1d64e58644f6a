# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of oomguard.memory.oom_report: runs on the controller only (no module is sent to
any host). It reads what the play registered on every host from hostvars, or earlier report.json
files (merge), and writes report.json, report.md and junit.xml. The gate verdict is returned, not
enforced: the playbook fails the failing hosts after the files are written."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import glob
import os
import socket

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible_collections.oomguard.memory.plugins.plugin_utils import report as rep

LOCAL_NAMES = ('localhost', '127.0.0.1', '::1')

ARGUMENT_SPEC = dict(
    dest=dict(type='str', default='./oom-report'),
    hosts=dict(type='list', elements='str'),
    fail_on=dict(type='raw'),
    fail_on_kills=dict(type='raw'),
    fail_on_unreachable=dict(type='raw', default=True),
    since=dict(type='str'),
    merge=dict(type='list', elements='str'),
    facts_var=dict(type='str', default='oom_report_facts'),
    audit_var=dict(type='str', default='oom_report_audit'),
    error_var=dict(type='str', default='oom_report_error'),
    validate_only=dict(type='bool', default=False),
)


def _host_name(inventory_name, hostvars):
    """The name a host is reported under: oom_report_host_name when set; for a local run under
    the name localhost (make run, ansible-pull), this machine's host name, so reports of many
    ansible-pull hosts can be merged."""
    override = hostvars.get('oom_report_host_name')
    if override:
        return to_text(override)
    if inventory_name in LOCAL_NAMES and hostvars.get('ansible_connection', 'local') == 'local':
        return to_text(socket.gethostname()) or inventory_name
    return inventory_name


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _valid, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            level, note = rep.gate_level(args['fail_on'], args['fail_on_kills'])
            unreachable_fails = rep.strict_bool(args['fail_on_unreachable'], 'oom_report_fail_on_unreachable')
        except rep.GateError as exc:
            raise AnsibleActionFail(to_text(exc))
        if note:
            result.setdefault('deprecations', []).append({'msg': note, 'version': '1.0.0',
                                                          'collection_name': 'oomguard.memory'})
        result.update(changed=False, fail_on=level, fail_on_unreachable=unreachable_fails)
        if args['validate_only']:
            return result

        dest = os.path.abspath(os.path.expanduser(args['dest']))
        if args['merge']:
            report = self._merged(args['merge'], level, unreachable_fails)
        else:
            report = self._gathered(args, task_vars, level, unreachable_fails)

        if self._task.check_mode:
            result['msg'] = 'check mode: would write %s' % ', '.join(os.path.join(dest, n) for n in rep.FILES)
            result['paths'] = [os.path.join(dest, n) for n in rep.FILES]
        else:
            try:
                result['paths'] = rep.write_files(dest, report)
            except rep.ReportError as exc:
                raise AnsibleActionFail(to_text(exc))
        failing = dict((e.get('inventory_name') or e['name'], e['gate']) for e in report['hosts'] if e['gate'])
        result.update(dest=dest, fleet=report['fleet'], failing=failing,
                      failing_lines=['%s: %s' % (name, '; '.join(reasons)) for name, reasons in sorted(failing.items())])
        return result

    def _gathered(self, args, task_vars, level, unreachable_fails):
        hosts = args['hosts'] if args['hosts'] is not None else task_vars.get('ansible_play_hosts_all') or []
        hostvars = task_vars.get('hostvars') or {}
        entries = []
        for name in hosts:
            try:
                values = hostvars[name]
            except KeyError:
                raise AnsibleActionFail('hosts: %s is not a host of the inventory' % name)
            entry = rep.host_entry(_host_name(name, values), values.get(args['facts_var']),
                                   values.get(args['audit_var']), values.get(args['error_var']))
            entry['inventory_name'] = name
            entry['since'] = to_text(values.get('oom_report_since') or '') or None
            entries.append(entry)
        return rep.build_report(entries, level, args['since'], unreachable_fails)

    def _merged(self, patterns, level, unreachable_fails):
        paths = []
        for pattern in patterns:
            pattern = os.path.abspath(os.path.expanduser(pattern))
            found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            if not found:
                raise AnsibleActionFail('merge: no report.json matches %s' % pattern)
            # a directory stands for the report.json in it (a slice's oom_report_dir)
            paths.extend(os.path.join(p, 'report.json') if os.path.isdir(p) else p for p in found)
        try:
            reports = [rep.load_report(path) for path in paths]
        except rep.ReportError as exc:
            raise AnsibleActionFail(to_text(exc))
        return rep.merge_reports(reports, level, unreachable_fails, labels=paths)
