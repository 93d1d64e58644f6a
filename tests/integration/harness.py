"""The one place integration tests touch Ansible.

``Ansible.module()`` runs one module on localhost for real and returns its result dict.
Plain runs go through pytest-ansible's ``localhost`` fixture (in-process, fast); check-mode and
diff-mode runs, which pytest-ansible cannot ask for, go through a one-task ``ansible-playbook``
run that saves the registered result. pytest-ansible has announced its end of life
(December 2026): replacing it means rewriting ``_adhoc`` below, nothing else.

``Ansible.playbook()`` runs a playbook and returns its PLAY RECAP counts and output.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
RECAP_RE = re.compile(r'^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+'
                      r'skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)', re.M)


def ansible_env(**extra):
    env = dict(os.environ)
    env.setdefault('ANSIBLE_COLLECTIONS_PATH', os.path.join(ROOT, '.collections'))
    env.setdefault('ANSIBLE_PYTHON_INTERPRETER', '/usr/bin/python3')
    env['ANSIBLE_NOCOLOR'] = '1'
    env['ANSIBLE_LOCALHOST_WARNING'] = 'false'
    env['ANSIBLE_INVENTORY_UNPARSED_WARNING'] = 'false'
    env.update(extra)
    return env


class Recap(object):
    """What an ansible-playbook run did: rc, output and the PLAY RECAP counts of one host."""

    def __init__(self, rc, output, host='localhost'):
        self.rc = rc
        self.output = output
        counts = {m.group(1): m for m in RECAP_RE.finditer(output)}.get(host)
        names = ('ok', 'changed', 'unreachable', 'failed', 'skipped', 'rescued', 'ignored')
        self.counts = dict(zip(names, (int(counts.group(i)) for i in range(2, 9)))) if counts else {}

    def __getattr__(self, name):
        try:
            return self.__dict__['counts'][name]
        except KeyError:
            raise AttributeError('no %r in the PLAY RECAP; output was:\n%s' % (name, self.__dict__['output'][-3000:]))


class Ansible(object):
    def __init__(self, localhost):
        self._localhost = localhost

    def module(self, name, check=False, diff=False, **args):
        """Run module ``name`` (FQCN) with ``args``; return its result dict."""
        if check or diff:
            return self._via_playbook(name, args, check, diff)
        return self._adhoc(name, args)

    def _adhoc(self, name, args):
        result = getattr(self._localhost, name)(**args)
        return dict(result['localhost'])

    def _via_playbook(self, name, args, check, diff):
        with tempfile.TemporaryDirectory(prefix='oomguard-it-') as tmp:
            out = os.path.join(tmp, 'result.json')
            play = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': [
                {'name': 'run', name: args, 'register': 'result', 'ignore_errors': True},
                {'name': 'save', 'ansible.builtin.copy': {'content': '{{ result | to_json }}', 'dest': out},
                 'check_mode': False, 'diff': False},
            ]}]
            path = os.path.join(tmp, 'play.yml')
            with open(path, 'w') as handle:
                json.dump(play, handle)
            recap = self.playbook(path, check=check, diff=diff)
            if not os.path.exists(out):
                raise AssertionError('the module run left no result:\n%s' % recap.output[-3000:])
            with open(out) as handle:
                return json.load(handle)

    def playbook(self, path, check=False, diff=False, extra_vars=None, inventory='localhost,', env=None):
        """Run a playbook against localhost (local connection); return a Recap."""
        return run_playbook(['-i', inventory, '-c', 'local', path], check, diff, extra_vars, ansible_env(**(env or {})))


def run_playbook(args, check, diff, extra_vars, env, host='localhost'):
    """ansible-playbook with ``args`` (inventory, connection, playbook) from the repo root."""
    argv = [os.path.join(BIN, 'ansible-playbook')] + args
    if check:
        argv.append('--check')
    if diff:
        argv.append('--diff')
    if extra_vars:
        argv += ['-e', json.dumps(extra_vars)]
    # stdin from /dev/null: pytest-ansible's in-process runs mark fd 0 not inheritable, and
    # ansible-playbook's workers die without a valid fd 0 ("Could not detach from stdio").
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
                          env=env, universal_newlines=True, check=False)
    return Recap(proc.returncode, proc.stdout, host=host)
