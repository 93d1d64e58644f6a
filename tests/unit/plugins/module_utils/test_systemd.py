"""Drop-in paths, content and writes (in a temp root), unit-name validation, systemctl calls."""
import os

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import systemd


@pytest.mark.parametrize('name, expected', [
    ('ssh', 'ssh.service'),
    ('ssh.service', 'ssh.service'),
    ('getty@tty1.service', 'getty@tty1.service'),
    ('postgresql@15-main', 'postgresql@15-main.service'),
    ('dev-disk-by\\x2dlabel-data.mount', 'dev-disk-by\\x2dlabel-data.mount'),
    ('my.app', 'my.app.service'),
])
def test_unit_names_accepted(name, expected):
    assert systemd.validate_unit(name) == expected


@pytest.mark.parametrize('name, words', [
    ('', 'a unit name is required'),
    ('../../etc/passwd', 'not a valid systemd unit name'),
    ('a b.service', 'not a valid systemd unit name'),
    ('x/y.service', 'not a valid systemd unit name'),
    ('foo@.service', 'is a template; name an instance (for example foo@NAME.service)'),
    ('x' * 260, 'not a valid systemd unit name'),
])
def test_unit_names_refused(name, words):
    with pytest.raises(systemd.SystemdError) as caught:
        systemd.validate_unit(name)
    assert words in str(caught.value)


def test_unit_type_restriction():
    assert systemd.validate_unit('x.socket', types=systemd.EXEC_SECTIONS) == 'x.socket'
    with pytest.raises(systemd.SystemdError) as caught:
        systemd.validate_unit('x.timer', types=systemd.EXEC_SECTIONS, option='unit')
    assert "'x.timer' is a .timer unit; this setting applies to .mount, .service, .socket, .swap units only" \
        in str(caught.value)


def test_section_for():
    assert systemd.section_for('ssh.service') == 'Service'
    assert systemd.section_for('x.socket') == 'Socket'


def test_dropin_path():
    assert systemd.dropin_path('ssh.service', '50-oomguard-oom-score-adj') == \
        '/etc/systemd/system/ssh.service.d/50-oomguard-oom-score-adj.conf'
    assert systemd.dropin_path('ssh.service', 'x.conf', root='/tmp/r') == '/tmp/r/etc/systemd/system/ssh.service.d/x.conf'
    with pytest.raises(systemd.SystemdError):
        systemd.dropin_path('ssh.service', '../evil')


def test_render_dropin_exact_text():
    text = systemd.render_dropin('Service', [('OOMScoreAdjust', -900)], comment='Managed by Ansible.\n\nDo not edit.')
    assert text == '# Managed by Ansible.\n#\n# Do not edit.\n[Service]\nOOMScoreAdjust=-900\n'
    assert systemd.render_dropin('Service', [('MemoryMax', '512M'), ('MemorySwapMax', 0)]) == \
        '[Service]\nMemoryMax=512M\nMemorySwapMax=0\n'
    with pytest.raises(systemd.SystemdError):
        systemd.render_dropin('Service', [('MemoryMax', '1\nExecStart=/bin/evil')])


def test_write_check_mode_then_real_then_idempotent_then_remove(tmp_path):
    path = systemd.dropin_path('t.service', 'x', root=str(tmp_path))
    text = systemd.render_dropin('Service', [('OOMScoreAdjust', 5)])
    planned = systemd.write_dropin(path, text, check_mode=True)
    assert planned == {'changed': True, 'before': None, 'after': text, 'path': path}
    assert not os.path.exists(os.path.dirname(path))
    assert systemd.write_dropin(path, text)['changed'] is True
    with open(path) as handle:
        assert handle.read() == text
    assert oct(os.stat(path).st_mode & 0o777) == '0o644'
    assert systemd.write_dropin(path, text)['changed'] is False
    assert systemd.remove_dropin(path, check_mode=True)['changed'] is True and os.path.exists(path)
    assert systemd.remove_dropin(path)['before'] == text
    assert not os.path.exists(os.path.dirname(path))         # empty <unit>.d removed
    assert systemd.remove_dropin(path)['changed'] is False


def test_remove_keeps_a_dropin_dir_with_other_files(tmp_path):
    path = systemd.dropin_path('t.service', 'x', root=str(tmp_path))
    systemd.write_dropin(path, '[Service]\n')
    other = os.path.join(os.path.dirname(path), 'admin.conf')
    open(other, 'w').close()
    systemd.remove_dropin(path)
    assert os.path.exists(other)


def test_booted(tmp_path):
    assert systemd.booted(str(tmp_path)) is False
    os.makedirs(str(tmp_path / 'run/systemd/system'))
    assert systemd.booted(str(tmp_path)) is True


class FakeModule(object):
    def __init__(self, rc=0, out='', err='', systemctl='/bin/systemctl'):
        self.calls, self.result, self.systemctl = [], (rc, out, err), systemctl

    def get_bin_path(self, name):
        return self.systemctl

    def run_command(self, argv, environ_update=None):
        self.calls.append((argv, environ_update))
        return self.result


def test_show_parses_properties_with_c_locale():
    module = FakeModule(out='LoadState=loaded\nMainPID=42\nControlGroup=/system.slice/a=b.service\n')
    assert systemd.show(module, 'a.service', ['LoadState', 'MainPID', 'ControlGroup']) == \
        {'LoadState': 'loaded', 'MainPID': '42', 'ControlGroup': '/system.slice/a=b.service'}
    argv, env = module.calls[0]
    assert argv == ['/bin/systemctl', 'show', 'a.service', '--property=LoadState', '--property=MainPID',
                    '--property=ControlGroup'] and env == {'LC_ALL': 'C'}


def test_daemon_reload_errors_are_sentences():
    assert systemd.daemon_reload(FakeModule()) is True
    with pytest.raises(systemd.SystemdError) as caught:
        systemd.daemon_reload(FakeModule(rc=1, err='System has not been booted with systemd as init system (PID 1).\n'))
    assert str(caught.value) == ('systemctl daemon-reload failed (rc=1): System has not been booted with systemd '
                                 'as init system (PID 1).')
    with pytest.raises(systemd.SystemdError) as caught:
        systemd.daemon_reload(FakeModule(systemctl=None))
    assert 'systemctl was not found' in str(caught.value)
