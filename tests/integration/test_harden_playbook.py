"""playbooks/harden.yml (what `make run APPLY=1` applies): in check mode it runs every role
against this host, predicts changes and leaves the kernel and /etc exactly as they were."""
import hashlib


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
    recap = ansible.playbook('playbooks/harden.yml', check=True, diff=True,
                             inventory='playbooks/inventory.ini',
                             extra_vars={'swap_file_path': swapfile, 'swap_size': '32M'})
    assert recap.rc == 0 and recap.failed == 0, recap.output[-3000:]
    assert recap.changed >= 1, 'a host without swap must be predicted to change'
    assert snapshot() == before
    assert not (tmp_path / 'harden.swap').exists()
