"""playbooks/harden.yml (what `make run APPLY=1` applies): in check mode it runs every role
against this host, predicts changes and leaves the kernel and /etc exactly as they were."""
import hashlib
import os

SYSCTL_FILE = '/etc/sysctl.d/90-oomguard-swappiness.conf'


def snapshot():
    paths = ('/proc/swaps', '/proc/sys/vm/swappiness', '/etc/fstab')
    state = {}
    for path in paths:
        with open(path, 'rb') as handle:
            state[path] = hashlib.sha256(handle.read()).hexdigest()
    return state


def test_check_mode_predicts_and_changes_nothing(ansible, tmp_path):
    before = snapshot()
    swapfile = str(tmp_path / 'harden.swap')
    extra = {'swap_file_path': swapfile, 'swap_size': '32M'}
    if os.path.exists(SYSCTL_FILE):
        # The host's own file of that name is never rewritten (the module refuses, by design, and
        # a test must not change that file): leave swappiness out on such a host.
        extra['swap_swappiness'] = None
    recap = ansible.playbook('playbooks/harden.yml', check=True, diff=True,
                             inventory='playbooks/inventory.ini', extra_vars=extra)
    assert recap.rc == 0 and recap.failed == 0, recap.output[-3000:]
    assert recap.changed >= 1, 'a host without swap must be predicted to change'
    assert snapshot() == before
    assert not (tmp_path / 'harden.swap').exists()
