"""The systemd container testbed for integration tests: a Debian 12 container booting systemd as
PID 1 (tests/testbed/systemd-container.sh builds and starts it), reached by Ansible through the
``containers.podman.podman`` connection (no network).

Tests ask for the ``systemd_container`` fixture (registered in conftest.py)::

    def test_x(systemd_container):
        rc, out = systemd_container.exec(['systemctl', 'show', '-p', 'OOMScoreAdjust', 'ssh'])
        result = systemd_container.module('oomguard.memory.oom_score_adj', unit='ssh', value=-900)
        recap = systemd_container.playbook('tests/integration/playbooks/x.yml', extra_vars={...})

The fixture is session-scoped and shared by every test module: the container
is built (if its inputs changed) and started once, and removed at the end of the session, also
when tests fail or the session is interrupted. The image and the debootstrap cache outlive the
session (see the script). Ansible runs use the collection installed in $ANSIBLE_COLLECTIONS_PATH,
like the rest of the integration suite; containers.podman comes with the ``ansible`` package.
"""
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile

import pytest

from harness import ROOT, ansible_env, run_playbook

SCRIPT = os.path.join(ROOT, 'tests', 'testbed', 'systemd-container.sh')
VM_SCRIPT = os.path.join(ROOT, 'tests', 'testbed', 'vm.sh')
CONTAINERS_CONF = os.path.join(ROOT, 'tests', 'testbed', 'containers.conf')


class SystemdContainer(object):
    """One running testbed container."""

    def __init__(self, name):
        self.name = name
        self._tmp = tempfile.mkdtemp(prefix='oomguard-testbed-')
        self.inventory = os.path.join(self._tmp, 'inventory.ini')
        with open(self.inventory, 'w') as handle:
            handle.write('%s ansible_connection=containers.podman.podman '
                         'ansible_python_interpreter=/usr/bin/python3\n' % name)

    def _env(self):
        # Pipelining: modules go to the container's python over podman exec's stdin, without temp
        # files (measured: the oom_protect role scenario went from 66 s to 30 s).
        return ansible_env(CONTAINERS_CONF=CONTAINERS_CONF, ANSIBLE_PIPELINING='true')

    def start(self):
        proc = subprocess.run([SCRIPT, 'start', self.name], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT,
                              universal_newlines=True, env=self._env(), check=False)
        if proc.returncode != 0:
            raise RuntimeError('the systemd container testbed did not start:\n%s' % proc.stdout[-4000:])
        self.start_log = proc.stdout

    def stop(self):
        subprocess.run([SCRIPT, 'stop', self.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=self._env(), check=False)
        for name in os.listdir(self._tmp):
            os.unlink(os.path.join(self._tmp, name))
        os.rmdir(self._tmp)

    def exec(self, argv):
        """Run argv in the container; return (rc, stdout+stderr)."""
        proc = subprocess.run(['podman', 'exec', self.name] + list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, env=self._env(), check=False)
        return proc.returncode, proc.stdout

    def playbook(self, path, extra_vars=None, check=False, diff=False):
        """Run a playbook (hosts: all) against the container; return a Recap for it."""
        return run_playbook(['-i', self.inventory, path], check, diff, extra_vars, self._env(), host=self.name)

    def module(self, name, check=False, diff=False, **args):
        """Run one module (FQCN) in the container; return its result dict (failed/msg/changed...)."""
        return run_module(self, self._tmp, name, args, check, diff)


def run_module(box, tmp, name, args, check, diff):
    """Run module ``name`` on ``box`` through a one-task playbook that saves the registered result
    on the controller; return the result dict (with the run's output as ``_output``)."""
    out = os.path.join(tmp, 'result.json')
    if os.path.exists(out):
        os.unlink(out)
    play = [{'hosts': 'all', 'gather_facts': False, 'tasks': [
        {'name': 'run', name: args, 'register': 'result', 'ignore_errors': True},
        {'name': 'save', 'ansible.builtin.copy': {'content': '{{ result | to_json }}', 'dest': out},
         'delegate_to': 'localhost', 'check_mode': False, 'diff': False,
         'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': '/usr/bin/python3'}},
    ]}]
    path = os.path.join(tmp, 'play.yml')
    with open(path, 'w') as handle:
        json.dump(play, handle)
    recap = box.playbook(path, check=check, diff=diff)
    if not os.path.exists(out):
        raise AssertionError('the module run in %s left no result:\n%s' % (box.name, recap.output[-3000:]))
    with open(out) as handle:
        result = json.load(handle)
    result['_output'] = recap.output
    return result


class VM(object):
    """The VM testbed (tests/testbed/vm.sh): Debian 12, systemd as PID 1, cgroup v2, reached over
    SSH on a loopback port forward with a key made for the run.

    With OOMGUARD_VM_RUN set to the run directory of a VM already started by ``vm.sh start``, that
    VM is used and left running (handy while writing tests); otherwise one is booted and stopped."""

    def __init__(self, name, run=None):
        self.name = name
        self.run = run
        self.owned = run is None
        self._tmp = tempfile.mkdtemp(prefix='oomguard-vm-')

    @property
    def inventory(self):
        return os.path.join(self.run, 'inventory.ini')

    def _env(self):
        return ansible_env(ANSIBLE_LOCAL_TEMP=self._tmp, ANSIBLE_SSH_CONTROL_PATH_DIR=self.run, ANSIBLE_TIMEOUT='60')

    def start(self):
        proc = subprocess.run([VM_SCRIPT, 'start', self.name], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError('the VM testbed did not start:\n%s' % proc.stderr[-4000:])
        self.run = proc.stdout.strip().splitlines()[-1]
        self.start_log = proc.stderr

    def stop(self):
        if self.owned:
            subprocess.run([VM_SCRIPT, 'stop', self.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def exec(self, argv, timeout=300):
        """Run argv in the VM as root over SSH; return (rc, stdout+stderr)."""
        command = ' '.join(shlex.quote(arg) for arg in argv)
        proc = subprocess.run(['ssh', '-F', os.path.join(self.run, 'ssh_config'), 'oomguard-vm', command],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=timeout, check=False)
        return proc.returncode, proc.stdout

    def playbook(self, path, extra_vars=None, check=False, diff=False):
        """Run a playbook (hosts: all) against the VM; return a Recap for it."""
        return run_playbook(['-i', self.inventory, path], check, diff, extra_vars, self._env(), host=self.name)

    def module(self, name, check=False, diff=False, **args):
        """Run one module (FQCN) in the VM; return its result dict."""
        return run_module(self, self._tmp, name, args, check, diff)


_SHARED = {}


def vm_unavailable():
    """Why this host cannot boot the VM testbed (vm.sh builds as root and installs qemu with
    apt-get when it is missing), or None."""
    if os.geteuid() != 0:
        return 'vm.sh needs root (podman storage, mkfs.ext4 with file ownership)'
    if shutil.which('qemu-system-x86_64') is None and shutil.which('apt-get') is None:
        return 'qemu-system-x86_64 is not installed and there is no apt-get to install it'
    return None


def shared_container(request):
    """The session's one container: started on first use, removed when the session ends."""
    if 'error' in _SHARED:
        raise RuntimeError(_SHARED['error'])
    if 'box' not in _SHARED:
        box = SystemdContainer('oomguard-tb-%d' % os.getpid())
        # Registered before starting, so a half-started container is removed too; config cleanup
        # runs once at the end of the session even when several test modules use the container.
        request.config.add_cleanup(box.stop)
        try:
            box.start()
        except RuntimeError as exc:
            _SHARED['error'] = str(exc)
            raise
        _SHARED['box'] = box
    return _SHARED['box']


@pytest.fixture(scope='session')
def vm(request):
    """The VM testbed, booted once per session (or the one in $OOMGUARD_VM_RUN), stopped at the end.
    Skips with the reason when this host cannot run it (not root, no qemu and no apt-get to install
    it); a VM that should boot here and does not is an error with vm.sh's output."""
    if 'vm_error' in _SHARED:
        raise RuntimeError(_SHARED['vm_error'])
    if 'vm' not in _SHARED:
        run = os.environ.get('OOMGUARD_VM_RUN')
        reason = vm_unavailable() if run is None else None
        if reason:
            pytest.skip('the VM testbed cannot run here: %s' % reason)
        box = VM(os.path.basename(run) if run else 'oomguard-vm-%d' % os.getpid(), run=run)
        request.config.add_cleanup(box.stop)
        if run is None:
            try:
                box.start()
            except RuntimeError as exc:
                _SHARED['vm_error'] = str(exc)
                raise
        _SHARED['vm'] = box
    return _SHARED['vm']


@pytest.fixture(scope='session')
def systemd_container(request):
    """The systemd container (built if needed, started once per session, removed at the end)."""
    return shared_container(request)


def show(box, unit, prop):
    """One property of ``unit`` as systemd in ``box`` (the VM or a container) reports it."""
    rc, out = box.exec(['systemctl', 'show', '-p', prop, '--value', unit])
    assert rc == 0, out
    return out.strip()


@contextlib.contextmanager
def sleep_service(box, unit, also_remove=()):
    """A throwaway ``sleep infinity`` service ``unit`` running in container ``box``; on exit it is
    stopped and its unit file, its drop-ins and those of ``also_remove`` units are deleted."""
    rc, out = box.exec(['sh', '-c', 'printf "[Service]\\nExecStart=/bin/sleep infinity\\n" > /etc/systemd/system/%s'
                        ' && systemctl daemon-reload && systemctl start %s' % (unit, unit)])
    assert rc == 0, out
    try:
        yield box
    finally:
        dropins = ' '.join('/etc/systemd/system/%s.d' % name for name in (unit,) + tuple(also_remove))
        box.exec(['sh', '-c', 'systemctl stop %s; rm -rf /etc/systemd/system/%s %s; systemctl daemon-reload'
                  % (unit, unit, dropins)])
