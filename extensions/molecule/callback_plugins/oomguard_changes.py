# -*- coding: utf-8 -*-
# oomguard molecule helper (not part of the collection): records, per playbook run, which tasks
# reported changed on which host, so that verify can compare the --check run with the real one.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: oomguard_changes
type: aggregate
short_description: record changed tasks per host for the molecule check == converge proof
description:
  - Appends one JSON line per playbook run to C($MOLECULE_EPHEMERAL_DIRECTORY/oomguard-changes.jsonl)
    with the scenario, the playbook, whether it ran in check mode and, per host, the names of the
    tasks that reported changed. Tasks whose name starts with C(Snapshot) are left out.
requirements: [MOLECULE_EPHEMERAL_DIRECTORY in the environment]
'''

import json
import os

from ansible import context
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'oomguard_changes'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._changed = {}
        self._playbook = None

    def v2_playbook_on_start(self, playbook):
        self._playbook = os.path.basename(playbook._file_name)

    def v2_runner_on_ok(self, result):
        task = result._task
        if result._result.get('changed') and not task.get_name().startswith('Snapshot'):
            host = result._host.get_name()
            self._changed.setdefault(host, []).append(task.get_name())

    def v2_playbook_on_stats(self, stats):
        directory = os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY')
        if not directory:
            return
        record = {'scenario': os.environ.get('MOLECULE_SCENARIO_NAME'), 'playbook': self._playbook,
                  'check': bool(context.CLIARGS.get('check')), 'hosts': sorted(stats.processed),
                  'changed': self._changed}
        with open(os.path.join(directory, 'oomguard-changes.jsonl'), 'a') as handle:
            handle.write(json.dumps(record, sort_keys=True) + '\n')
