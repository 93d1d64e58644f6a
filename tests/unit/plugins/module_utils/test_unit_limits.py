"""unit_limits.py: the drop-in memory_limit writes and what it reads back from systemctl."""
import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import systemd, unit_limits

M = 1024 * 1024
G = 1024 * M


def test_dropin_for_a_service():
    text = unit_limits.render_dropin('app.service', {'max': 2 * G, 'high': 1536 * M, 'swap_max': 0,
                                                     'oom_group': True})
    assert text == ('# Managed by oomguard.memory.memory_limit: memory limits of app.service.\n'
                    '# Local changes are overwritten.\n'
                    '[Service]\n'
                    'MemoryMax=2G\n'
                    'MemoryHigh=1536M\n'
                    'MemorySwapMax=0\n'
                    'OOMPolicy=kill\n')


def test_dropin_for_a_slice_keeps_percent_and_infinity():
    text = unit_limits.render_dropin('batch.slice', {'max': 4 * G, 'low': None}, {'max': '25 %', 'low': 'infinity'})
    assert '[Slice]\nMemoryMax=25%\nMemoryLow=infinity\n' in text


def test_dropin_for_old_systemd_on_v1_uses_memory_limit():
    text = unit_limits.render_dropin('app.service', {'max': 64 * M}, legacy_limit=True)
    assert 'MemoryLimit=64M\n' in text
    assert 'MemoryMax' not in text


def test_dropin_oom_group_false_leaves_policy_alone():
    assert 'OOMPolicy' not in unit_limits.render_dropin('app.service', {'oom_group': False})


def test_dropin_round_trip():
    text = unit_limits.render_dropin('db.scope', {'min': 1 * G, 'low': 4 * G, 'oom_group': True})
    assert unit_limits.parse_dropin(text) == {'min': '1G', 'low': '4G', 'oom_group': True}


@pytest.mark.parametrize('value,expected', [
    (0, '0'), (4097, '4097'), (64 * M, '64M'), (1536 * M, '1536M'), (3 * 1024 * G, '3T'), (None, 'infinity'),
])
def test_property_text(value, expected):
    assert unit_limits.property_text(value) == expected


def test_validate_unit_adds_service_and_limits_types():
    assert unit_limits.validate_unit('app') == 'app.service'
    assert unit_limits.validate_unit('batch.slice') == 'batch.slice'
    with pytest.raises(systemd.SystemdError) as caught:
        unit_limits.validate_unit('web.socket')
    assert 'applies to' in str(caught.value)
    with pytest.raises(systemd.SystemdError):
        unit_limits.validate_unit('bad name.service')


def test_dropin_path():
    assert unit_limits.dropin_path('app.service', '/x') == '/x/etc/systemd/system/app.service.d/50-oomguard-memory.conf'


@pytest.mark.parametrize('text,expected', [('infinity', None), ('67108864', 64 * M), ('', None)])
def test_show_value(text, expected):
    assert unit_limits.show_value(text) == expected


def test_parse_version():
    assert unit_limits.parse_version('systemd 252 (252.38-1~deb12u1)\n+PAM +AUDIT') == 252
    assert unit_limits.parse_version('') is None


class FakeModule(object):
    def __init__(self, outputs):
        self.outputs = outputs
        self.calls = []

    def get_bin_path(self, name):
        return '/usr/bin/' + name

    def run_command(self, argv, environ_update=None):
        self.calls.append(argv)
        return self.outputs[argv[1]]


def test_systemd_properties_when_not_booted(tmp_path):
    module = FakeModule({})
    props = unit_limits.systemd_properties(module, 'app.service', str(tmp_path))
    assert props['booted'] is False and props['usage'] is None and props['current'] == {}
    assert module.calls == []


def test_systemd_properties_parses_show(tmp_path):
    (tmp_path / 'run' / 'systemd' / 'system').mkdir(parents=True)
    show = ('MemoryCurrent=104857600\nControlGroup=/system.slice/app.service\nOOMPolicy=stop\nMemoryMax=infinity\n'
            'MemoryHigh=1073741824\nMemorySwapMax=infinity\nMemoryLow=0\nMemoryMin=0\n')
    module = FakeModule({'--version': (0, 'systemd 252 (252.38-1~deb12u1)\n', ''), 'show': (0, show, '')})
    props = unit_limits.systemd_properties(module, 'app.service', str(tmp_path))
    assert props['usage'] == 100 * M
    assert props['path'] == '/system.slice/app.service'
    assert props['systemd_version'] == 252
    assert props['current'] == {'max': None, 'high': G, 'swap_max': None, 'low': 0, 'min': 0, 'oom_group': False}
    assert all(call[0].endswith('systemctl') for call in module.calls)


def test_systemd_properties_inactive_unit_has_no_usage(tmp_path):
    (tmp_path / 'run' / 'systemd' / 'system').mkdir(parents=True)
    show = 'MemoryCurrent=[not set]\nMemoryMax=infinity\n'
    module = FakeModule({'--version': (0, 'systemd 252\n', ''), 'show': (0, show, '')})
    props = unit_limits.systemd_properties(module, 'app.service', str(tmp_path))
    assert props['usage'] is None
