"""swappiness on a fake /proc/sys and a fake tree of sysctl configuration files."""
import os

import pytest

from ansible_collections.oomguard.memory.plugins.modules import swappiness
from faketree import write

OURS = '/etc/sysctl.d/90-oomguard-swappiness.conf'


class Fake(object):
    def __init__(self, tmp_path, monkeypatch):
        self.proc = tmp_path / 'proc-root'
        self.conf = tmp_path / 'conf-root'
        (tmp_path / 'host').mkdir()
        self.live(60)
        self.release('6.18.44')
        monkeypatch.setattr(swappiness, 'PROC_ROOT', str(self.proc))
        monkeypatch.setattr(swappiness, 'CONFIG_ROOT', str(self.conf))
        monkeypatch.setattr(swappiness, 'HOST_ROOT', str(tmp_path / 'host'))

    def live(self, value=None):
        path = self.proc / 'proc/sys/vm/swappiness'
        if value is not None:
            write(self.proc, '/proc/sys/vm/swappiness', '%d\n' % value)
        return int(path.read_text())

    def release(self, text):
        write(self.proc, '/proc/sys/kernel/osrelease', text + '\n')

    def write(self, path, text):
        write(self.conf, path, text)

    def read(self, path):
        full = self.conf / path.lstrip('/')
        return full.read_text() if full.exists() else None


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return Fake(tmp_path, monkeypatch)


def test_max_swappiness_follows_the_kernel():
    assert swappiness.max_swappiness('5.8.0') == 200
    assert swappiness.max_swappiness('6.18.44-fc') == 200
    assert swappiness.max_swappiness('5.4.0-150-generic') == 100
    assert swappiness.max_swappiness('garbage') == 100


def test_applies_live_persists_and_is_idempotent(fake, run_module):
    result = run_module(swappiness, {'value': 10})
    assert result['changed'] is True
    assert (result['previous'], result['value'], result['boot_value']) == (60, 10, 10)
    assert result['file'] == OURS and result['overridden_by'] is None
    assert fake.live() == 10
    assert fake.read(OURS) == swappiness.HEADER + 'vm.swappiness = 10\n'
    again = run_module(swappiness, {'value': 10})
    assert again['changed'] is False and again['previous'] == 10


def test_check_mode_predicts_and_changes_nothing(fake, run_module):
    result = run_module(swappiness, {'value': 5, '_ansible_check_mode': True, '_ansible_diff': True})
    assert result['changed'] is True and result['value'] == 5 and result['boot_value'] == 5
    assert fake.live() == 60 and fake.read(OURS) is None
    assert result['diff'][0] == {'before_header': '/proc/sys/vm/swappiness', 'after_header': '/proc/sys/vm/swappiness',
                                 'before': '60\n', 'after': '5\n'}
    assert result['diff'][1]['after'].endswith('vm.swappiness = 5\n')


def test_conflict_from_sysctl_conf_warns_naming_the_file(fake, run_module, capsys):
    fake.write('/etc/sysctl.conf', 'vm.swappiness = 60\n')
    result = run_module(swappiness, {'value': 10})
    assert result['changed'] is True
    assert result['overridden_by'] == '/etc/sysctl.conf' and result['boot_value'] == 60
    # In-process, module.warn() goes to Ansible's display on stderr.
    assert '/etc/sysctl.conf sets vm.swappiness = 60 and is applied after %s' % OURS in capsys.readouterr().err


def test_conflict_fail_changes_nothing(fake, run_module):
    fake.write('/etc/sysctl.d/99-tuning.conf', 'vm.swappiness=1\n')
    result = run_module(swappiness, {'value': 10, 'on_conflict': 'fail'})
    assert result['failed'] is True
    assert result['msg'].startswith('/etc/sysctl.d/99-tuning.conf sets vm.swappiness = 1 and is applied after %s'
                                    % OURS)
    assert fake.live() == 60 and fake.read(OURS) is None


def test_earlier_file_is_not_a_conflict(fake, run_module):
    fake.write('/usr/lib/sysctl.d/50-default.conf', 'vm.swappiness = 30\n')
    result = run_module(swappiness, {'value': 10, 'on_conflict': 'fail'})
    assert result['changed'] is True and result['boot_value'] == 10 and result['overridden_by'] is None


def test_debian_symlink_to_sysctl_conf_names_the_real_file(fake, run_module):
    fake.write('/etc/sysctl.conf', 'vm.swappiness = 60\n')
    (fake.conf / 'etc/sysctl.d').mkdir()
    os.symlink('../sysctl.conf', str(fake.conf / 'etc/sysctl.d/99-sysctl.conf'))
    result = run_module(swappiness, {'value': 10, '_ansible_check_mode': True})
    assert result['overridden_by'] == '/etc/sysctl.conf'


def test_absent_removes_our_file_and_keeps_the_live_value(fake, run_module):
    run_module(swappiness, {'value': 10})
    fake.write('/usr/lib/sysctl.d/50-default.conf', 'vm.swappiness = 30\n')
    result = run_module(swappiness, {'state': 'absent'})
    assert result['changed'] is True and result['file'] is None
    assert result['boot_value'] == 30 and result['value'] == 10
    assert fake.read(OURS) is None and fake.live() == 10
    assert run_module(swappiness, {'state': 'absent'})['changed'] is False


def test_persist_false_only_touches_the_kernel(fake, run_module):
    result = run_module(swappiness, {'value': 20, 'persist': False})
    assert result['changed'] is True and fake.live() == 20 and fake.read(OURS) is None
    assert result['file'] is None


@pytest.mark.parametrize('release, value, words', [
    ('6.1.0', 201, 'accepts vm.swappiness from 0 to 200'),
    ('5.4.0', 150, 'accepts vm.swappiness from 0 to 100'),
    ('6.1.0', -1, 'out of range'),
])
def test_out_of_range_for_the_running_kernel(fake, run_module, release, value, words):
    fake.release(release)
    result = run_module(swappiness, {'value': value})
    assert result['failed'] is True and words in result['msg']
    assert fake.live() == 60


def test_sysctl_file_must_be_read_at_boot(fake, run_module):
    result = run_module(swappiness, {'value': 10, 'sysctl_file': '/etc/sysctl.conf'})
    assert result['failed'] is True and 'is not read at boot' in result['msg']
    result = run_module(swappiness, {'value': 10, 'sysctl_file': '/etc/sysctl.d/swap.txt'})
    assert result['failed'] is True


def test_container_is_skipped(fake, run_module, tmp_path):
    (tmp_path / 'host' / 'run').mkdir()
    (tmp_path / 'host' / 'run' / '.containerenv').write_text('')
    result = run_module(swappiness, {'value': 10})
    assert result['skipped'] is True and result['changed'] is False and fake.live() == 60


# ---- issue 15: hostile input


def test_boolean_value_is_not_taken_as_one(fake, run_module):
    result = run_module(swappiness, {'value': True})
    assert result['failed'] is True
    assert result['msg'].startswith('value: True is a boolean')
    assert fake.live() == 60 and fake.read(OURS) is None


@pytest.mark.parametrize('state', ['present', 'absent'])
def test_a_file_we_did_not_write_is_never_rewritten_or_removed(fake, run_module, state):
    theirs = '/etc/sysctl.d/60-admin.conf'
    fake.write(theirs, 'net.ipv4.ip_forward = 1\n')
    args = {'sysctl_file': theirs, 'state': state}
    if state == 'present':
        args['value'] = 10
    result = run_module(swappiness, args)
    assert result['failed'] is True
    assert result['msg'].startswith('sysctl_file: %s exists and was not written by this module' % theirs)
    assert 'name a file of its own in sysctl_file' in result['msg']
    assert fake.read(theirs) == 'net.ipv4.ip_forward = 1\n'
    assert fake.live() == 60


def test_our_own_file_is_still_rewritten_and_removed(fake, run_module):
    assert run_module(swappiness, {'value': 10})['changed'] is True
    assert run_module(swappiness, {'value': 20})['changed'] is True
    assert run_module(swappiness, {'state': 'absent'})['changed'] is True
    assert fake.read(OURS) is None


@pytest.mark.parametrize('name', ['.conf', '.90-oomguard.conf'])
def test_dot_file_names_that_systemd_sysctl_skips_are_refused(fake, run_module, name):
    result = run_module(swappiness, {'value': 10, 'sysctl_file': '/etc/sysctl.d/' + name})
    assert result['failed'] is True and result['msg'].startswith('sysctl_file: ')
    assert 'does not start with a dot' in result['msg']
    assert not (fake.conf / 'etc/sysctl.d').exists() or os.listdir(str(fake.conf / 'etc/sysctl.d')) == []


def test_hidden_files_do_not_decide_the_boot_value(fake, run_module):
    fake.write('/etc/sysctl.d/.99-hidden.conf', 'vm.swappiness = 99\n')
    result = run_module(swappiness, {'value': 10, 'persist': False, '_ansible_check_mode': True})
    assert result['boot_value'] is None and result['overridden_by'] is None


def test_fifo_as_sysctl_file_or_in_sysctl_d_does_not_hang(fake, run_module, no_hang):
    (fake.conf / 'etc/sysctl.d').mkdir(parents=True)
    os.mkfifo(str(fake.conf / 'etc/sysctl.d/50-pipe.conf'))
    result = run_module(swappiness, {'value': 10, 'sysctl_file': '/etc/sysctl.d/50-pipe.conf'})
    assert result['failed'] is True and 'FIFO' in result['msg'] and result['msg'].startswith('sysctl_file: ')
    fine = run_module(swappiness, {'value': 10, '_ansible_check_mode': True})
    assert fine['changed'] is True and fine['boot_value'] == 10
