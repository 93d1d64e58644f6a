#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: swappiness
short_description: Set vm.swappiness now and at boot, and tell who really decides it at boot
version_added: 0.1.0
description:
  - Applies O(value) live through C(/proc/sys/vm/swappiness) and persists it atomically in a sysctl.d file of its
    own (never C(/etc/sysctl.conf), which systemd-sysctl does not read).
  - Reads every sysctl configuration file in the order systemd-sysctl applies them (C(*.conf) in C(/etc/sysctl.d),
    C(/run/sysctl.d), C(/usr/local/lib/sysctl.d), C(/usr/lib/sysctl.d), C(/lib/sysctl.d), merged by file name,
    in lexical order of the names, then C(/etc/sysctl.conf); later assignments win) and reports the value the host
    will have after a reboot.
  - When another file that is applied later sets a different value, it warns or fails (O(on_conflict)) naming
    that file.
author: oomguard developers (@oomguard)
extends_documentation_fragment: [oomguard.memory.attributes]
options:
  value:
    description:
      - The swappiness, 0 to 100, or 0 to 200 on kernels that accept it (Linux 5.8 and later; checked against
        the running kernel). Required when O(state=present).
    type: int
  persist:
    description:
      - Also write the value to O(sysctl_file) so it survives a reboot. V(false) only changes the running kernel
        and leaves the files alone.
    type: bool
    default: true
  sysctl_file:
    description:
      - The sysctl.d file this module owns. It must end in C(.conf) and be in one of the directories above.
    type: path
    default: /etc/sysctl.d/90-oomguard-swappiness.conf
  state:
    description:
      - V(present) sets the value; V(absent) removes the persisted setting (O(sysctl_file)) and leaves the running
        kernel's value as it is.
    type: str
    choices: [present, absent]
    default: present
  on_conflict:
    description:
      - What to do when a file applied after O(sysctl_file) sets vm.swappiness to another value, so ours would
        not be the value after a reboot. V(warn) goes ahead and warns; V(fail) fails before changing anything.
    type: str
    choices: [warn, fail]
    default: warn
  in_container:
    description:
      - What to do when the host is a container (C(container=) in PID 1's environment, C(/run/.containerenv), or
        C(/.dockerenv) with an overlay-like root filesystem), whose vm.swappiness is the shared kernel's.
      - V(skip) changes nothing and returns C(skipped=true) with a warning; V(manage) sets it anyway.
    type: str
    choices: [skip, manage]
    default: skip
seealso:
  - module: oomguard.memory.swapfile
  - module: ansible.posix.sysctl
'''

EXAMPLES = r'''
- name: Prefer dropping caches to swapping, now and after reboots
  oomguard.memory.swappiness:
    value: 10

- name: Fail if another sysctl file would override it at boot
  oomguard.memory.swappiness:
    value: 10
    on_conflict: fail

- name: Forget the persisted setting (the running value stays)
  oomguard.memory.swappiness:
    state: absent
'''

RETURN = r'''
previous:
  description: vm.swappiness of the running kernel before the run.
  returned: always
  type: int
  sample: 60
value:
  description: vm.swappiness of the running kernel after the run (predicted in check mode).
  returned: always
  type: int
  sample: 10
boot_value:
  description: The value the host will have after a reboot according to the sysctl files (after the run); null
    when no file sets it (the kernel default then applies).
  returned: always
  type: int
  sample: 10
file:
  description: The sysctl.d file holding our setting after the run, or null when there is none.
  returned: always
  type: str
  sample: /etc/sysctl.d/90-oomguard-swappiness.conf
overridden_by:
  description: The file applied after ours that decides vm.swappiness at boot, or null when ours decides it
    (or when nothing is persisted).
  returned: always
  type: str
  sample: /etc/sysctl.conf
skipped:
  description: True when nothing was done because the host is a container and O(in_container=skip).
  returned: when skipped
  type: bool
  sample: true
'''

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.oomguard.memory.plugins.module_utils.container import skip_reason
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.files import (
    atomic_write, host_lock, read_text, remove_file)
from ansible_collections.oomguard.memory.plugins.module_utils.params import check_path, refuse_bools
from ansible_collections.oomguard.memory.plugins.module_utils.procfs import path_in
from ansible_collections.oomguard.memory.plugins.module_utils.sysctl import (
    SYSCTL_DIRS, boot_setting, config_files, is_read_at_boot, read_files, same_file)

# Module-level so unit tests can point them at fake trees; never user options.
PROC_ROOT = '/'
CONFIG_ROOT = '/'
HOST_ROOT = '/'

KEY = 'vm.swappiness'
MARK = '# Managed by oomguard.memory.swappiness'
HEADER = MARK + ': changes here are overwritten.\n'


def argument_spec():
    return dict(
        value=dict(type='int'),
        persist=dict(type='bool', default=True),
        sysctl_file=dict(type='path', default='/etc/sysctl.d/90-oomguard-swappiness.conf'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        on_conflict=dict(type='str', default='warn', choices=['warn', 'fail']),
        in_container=dict(type='str', default='skip', choices=['skip', 'manage']),
    )


def max_swappiness(release):
    """200 on Linux 5.8 and later (which accept up to 200), else 100."""
    match = re.match(r'(\d+)\.(\d+)', release or '')
    if not match:
        return 100
    return 200 if (int(match.group(1)), int(match.group(2))) >= (5, 8) else 100


def render(value):
    return '%s%s = %d\n' % (HEADER, KEY, value)


class Refusal(OomguardError):
    """A request we will not carry out; str() is the sentence for the user."""


class Swappiness(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.warnings = []
        self.previous = self.live_after = None
        self.live_changed = self.file_changed = False
        self.file_before = self.file_after = None
        self.boot_value = self.overridden_by = None

    def read_live(self):
        text = read_text(path_in(PROC_ROOT, '/proc/sys/vm/swappiness'))
        if text is None or not text.strip().isdigit():
            raise Refusal('cannot read vm.swappiness from /proc/sys/vm/swappiness (found %r)' % text)
        return int(text)

    def check(self):
        p = self.params
        refuse_bools(p, ['value'])
        path = check_path('sysctl_file', p['sysctl_file'])
        if not is_read_at_boot(os.path.basename(path)) or os.path.dirname(path) not in SYSCTL_DIRS:
            raise Refusal('sysctl_file: %s is not read at boot: systemd-sysctl and sysctl --system read only '
                          '*.conf files whose name does not start with a dot, directly in one of %s'
                          % (path, ', '.join(SYSCTL_DIRS)))
        if p['state'] == 'present':
            release = read_text(path_in(PROC_ROOT, '/proc/sys/kernel/osrelease')) or os.uname()[2]
            top = max_swappiness(release.strip())
            if not 0 <= p['value'] <= top:
                raise Refusal('value: %d is out of range: this kernel (%s) accepts vm.swappiness from 0 to %d'
                              % (p['value'], release.strip(), top))

    def plan(self):
        p = self.params
        self.check()
        ours = p['sysctl_file']
        self.previous = self.read_live()
        self.live_after = self.previous
        if p['state'] == 'present':
            self.live_after = p['value']
        self.live_changed = self.live_after != self.previous
        self.file_before = read_text(path_in(CONFIG_ROOT, ours), what='sysctl_file')
        if p['state'] == 'present' and p['persist']:
            self.file_after = render(p['value'])
        elif p['state'] == 'absent':
            self.file_after = None
        else:
            self.file_after = self.file_before
        self.file_changed = self.file_after != self.file_before
        if self.file_changed and self.file_before is not None and not self.file_before.startswith(MARK):
            raise Refusal('sysctl_file: %s exists and was not written by this module (its first line is not "%s"), '
                          'so it is left as it is and not %s; name a file of its own in sysctl_file, or move the '
                          'settings you want to keep out of %s and delete it yourself first'
                          % (ours, MARK, 'removed' if self.file_after is None else 'rewritten', ours))
        self.plan_boot()

    def plan_boot(self):
        """boot_value and overridden_by: the configuration as it will be, our file with its new text (or gone)."""
        p = self.params
        ours = p['sysctl_file']
        paths = config_files(CONFIG_ROOT)
        if self.file_after is not None and ours not in paths:
            paths = self._with(paths, ours)
        files = [(path, self.file_after if path == ours else text)
                 for path, text in read_files([x for x in paths if x != ours or self.file_after is not None],
                                              CONFIG_ROOT)]
        value, source = boot_setting(files, KEY)
        self.boot_value = int(value) if value is not None and value.isdigit() else None
        if value is not None and self.boot_value is None:
            self.warnings.append('%s sets %s to %r, which is not a number' % (source, KEY, value))
        self.overridden_by = None
        if self.file_after is not None and source is not None and not same_file(source, ours, CONFIG_ROOT):
            self.overridden_by = source
            if p['state'] == 'present' and p['persist'] and self.boot_value != p['value']:
                msg = ('%s sets %s = %s and is applied after %s, so the host will have %s after a reboot, not %d; '
                       'remove the setting from %s' % (source, KEY, value, ours, value, p['value'], source))
                if p['on_conflict'] == 'fail':
                    raise Refusal(msg)
                self.warnings.append(msg)

    @staticmethod
    def _with(paths, ours):
        """The application order with our file added (by name; /etc/sysctl.conf stays last)."""
        tail = [x for x in paths if x == '/etc/sysctl.conf']
        rest = [x for x in paths if x != '/etc/sysctl.conf' and os.path.basename(x) != os.path.basename(ours)]
        return sorted(rest + [ours], key=os.path.basename) + tail

    def apply(self):
        ours = self.params['sysctl_file']
        if self.file_changed:
            target = path_in(CONFIG_ROOT, ours)
            if self.file_after is None:
                remove_file(target)
            else:
                directory = os.path.dirname(target)
                if not os.path.isdir(directory):
                    os.makedirs(directory, 0o755)
                atomic_write(target, self.file_after, mode=0o644)
        if self.live_changed:
            try:
                with open(path_in(PROC_ROOT, '/proc/sys/vm/swappiness'), 'w') as handle:
                    handle.write('%d\n' % self.live_after)
            except (IOError, OSError) as exc:
                raise Refusal('the kernel refused vm.swappiness = %d: %s' % (self.live_after, exc.strerror))
            if self.read_live() != self.live_after:
                raise Refusal('wrote vm.swappiness = %d but the kernel reports %d'
                              % (self.live_after, self.read_live()))

    def result(self):
        p = self.params
        changed = self.file_changed or self.live_changed
        diff = [{'before_header': '/proc/sys/vm/swappiness', 'after_header': '/proc/sys/vm/swappiness',
                 'before': '%d\n' % self.previous, 'after': '%d\n' % self.live_after}]
        if self.file_changed:
            diff.append({'before_header': p['sysctl_file'], 'after_header': p['sysctl_file'],
                         'before': self.file_before or '', 'after': self.file_after or ''})
        return dict(changed=changed, previous=self.previous, value=self.live_after, boot_value=self.boot_value,
                    file=p['sysctl_file'] if self.file_after is not None else None,
                    overridden_by=self.overridden_by, diff=diff)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[('state', 'present', ['value'])])
    msg = skip_reason(module.params['in_container'], HOST_ROOT, 'vm.swappiness', 'set it on the host itself')
    if msg:
        module.warn(msg)
        module.exit_json(changed=False, skipped=True, msg=msg, previous=None, value=None, boot_value=None,
                         file=None, overridden_by=None)
    job = Swappiness(module)
    try:
        if module.check_mode:
            job.plan()
        else:
            with host_lock('swappiness'):
                job.plan()
                job.apply()
        result = job.result()
    except OomguardError as exc:
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg='%s: %s' % (exc.filename or 'vm.swappiness', exc.strerror or exc))
    for warning in job.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
