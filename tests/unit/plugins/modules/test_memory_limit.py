"""memory_limit against fake /sys/fs/cgroup trees (v1, hybrid, v2) and fake systemd drop-in roots.

The fake kernel (tests/unit/faketree.py) applies the kernel's own
rules on writes (page rounding, memsw >= limit, EBUSY below usage on v1, +memory rules on v2),
so what the module reads back is what a kernel would show.
"""
import os

import pytest
from ansible.module_utils import basic

from ansible_collections.oomguard.memory.plugins.module_utils import cgroups
from ansible_collections.oomguard.memory.plugins.modules import memory_limit
import faketree


M = 1024 * 1024
G = 1024 * M
PAGE = 4096


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A factory: tree('hybrid'|'v1'|'v2', **options) -> FakeCgroupfs wired into the module."""
    def make(layout, **options):
        fake = faketree.FakeCgroupfs(tmp_path, layout, **options)
        fake.patch(monkeypatch)
        monkeypatch.setattr(memory_limit, 'ROOT', str(tmp_path))
        monkeypatch.setattr(cgroups, 'PAGE_SIZE', PAGE)
        return fake
    return make


def snapshot(base):
    """Every file and its content under base: proves a refused run changed nothing."""
    out = {}
    for directory, _dirs, files in os.walk(str(base)):
        out[directory] = None
        for name in files:
            with open(os.path.join(directory, name)) as handle:
                out[os.path.join(directory, name)] = handle.read()
    return out


def refused(run_module, args, base):
    before = snapshot(base)
    result = run_module(memory_limit, args)
    assert result.get('failed') is True, result
    assert snapshot(base) == before
    assert '\n' not in result['msg'] and 'Traceback' not in result['msg']
    return result['msg']


# ---- cgroup v1 (hybrid host, like this machine)

def test_v1_create_and_limit_then_idempotent(tree, run_module):
    fake = tree('hybrid')
    args = {'cgroup': 'batch/job', 'create': True, 'max': '100000001', 'high': '64M'}
    first = run_module(memory_limit, args)
    assert first['changed'] is True and first['created'] is True
    assert first['cgroup_version'] == 'v1' and first['layout'] == 'hybrid'
    assert first['path'] == os.path.join(fake.memory_root, 'batch', 'job')
    assert fake.read('batch/job', 'memory.limit_in_bytes') == '99999744\n'
    assert fake.read('batch/job', 'memory.soft_limit_in_bytes') == '67108864\n'
    assert first['limits']['max'] == {'before': None, 'after': 99999744}
    assert first['limits']['swap_max'] == {'before': None, 'after': 'infinity'}
    second = run_module(memory_limit, args)
    assert second['changed'] is False
    assert second['limits']['max'] == {'before': 99999744, 'after': 99999744}
    assert second['usage_bytes'] == 0


def test_v1_changed_run_warns_that_raw_cgroups_do_not_persist(tree, run_module, monkeypatch):
    tree('hybrid')
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, msg: warnings.append(msg))
    run_module(memory_limit, {'cgroup': 'w', 'create': True, 'max': '64M', 'persist': True})
    assert any('cannot be honoured for a raw cgroup' in w for w in warnings)
    assert any('until it is removed or the host reboots' in w for w in warnings)
    warnings[:] = []
    run_module(memory_limit, {'cgroup': 'w', 'max': '64M'})
    assert warnings == []


def test_v1_check_mode_predicts_the_real_run(tree, run_module):
    fake = tree('hybrid')
    args = {'cgroup': 'app', 'create': True, 'max': '100000001', 'swap_max': '5000', '_ansible_diff': True}
    predicted = run_module(memory_limit, dict(args, _ansible_check_mode=True))
    assert predicted['changed'] is True
    assert not os.path.exists(os.path.join(fake.memory_root, 'app'))
    real = run_module(memory_limit, args)
    for key in ('changed', 'limits', 'created', 'path', 'diff'):
        assert predicted[key] == real[key], key
    assert fake.read('app', 'memory.memsw.limit_in_bytes') == '%d\n' % ((100000001 + 5000) // PAGE * PAGE)
    again = run_module(memory_limit, dict(args, _ansible_check_mode=True))
    assert again['changed'] is False


def test_v1_diff_shows_each_limit(tree, run_module):
    fake = tree('hybrid')
    fake.cgroup('app', **{'memory.limit_in_bytes': 512 * M})
    result = run_module(memory_limit, {'cgroup': 'app', 'max': '256M', '_ansible_diff': True})
    assert 'max (memory.limit_in_bytes) = 536870912\n' in result['diff']['before']
    assert 'max (memory.limit_in_bytes) = 268435456\n' in result['diff']['after']
    assert result['diff']['before_header'] == os.path.join(fake.memory_root, 'app')


def test_v1_swap_max_is_memsw_minus_max(tree, run_module):
    fake = tree('hybrid')
    fake.cgroup('app', **{'memory.limit_in_bytes': 64 * M, 'memory.memsw.limit_in_bytes': 64 * M})
    result = run_module(memory_limit, {'cgroup': 'app', 'max': '256M', 'swap_max': '128M'})
    assert result['changed'] is True
    assert fake.read('app', 'memory.memsw.limit_in_bytes') == '%d\n' % (384 * M)
    # memsw had to grow before the limit could: the kernel refuses limit > memsw.
    assert [w[1] for w in fake.writes] == ['%d' % (384 * M), '%d' % (256 * M)]
    assert result['limits']['swap_max'] == {'before': 0, 'after': 128 * M}
    assert run_module(memory_limit, {'cgroup': 'app', 'max': '256M', 'swap_max': '128M'})['changed'] is False


def test_v1_swap_max_without_swap_accounting_is_refused(tree, run_module, tmp_path):
    tree('hybrid', swap_accounting=False)
    msg = refused(run_module, {'cgroup': 'app', 'create': True, 'max': '64M', 'swap_max': '0'}, tmp_path)
    assert 'swapaccount=1' in msg


@pytest.mark.parametrize('option,value', [('low', '1G'), ('min', '1G'), ('oom_group', True)])
def test_v1_refuses_v2_only_limits(tree, run_module, tmp_path, option, value):
    fake = tree('hybrid')
    fake.cgroup('app')
    msg = refused(run_module, {'cgroup': 'app', option: value}, tmp_path)
    assert 'cgroup v1' in msg and option in msg


def test_refuses_max_below_usage_naming_both(tree, run_module, tmp_path):
    fake = tree('hybrid')
    fake.cgroup('app', usage=310 * M)
    msg = refused(run_module, {'cgroup': 'app', 'max': '64M'}, tmp_path)
    assert msg == ('refusing to set max=64M on %s: current usage is 310M, above the requested 64M; the kernel '
                   'would reclaim or OOM-kill at once; use force: true to apply anyway'
                   % os.path.join(fake.memory_root, 'app'))


def test_refuses_high_below_usage(tree, run_module, tmp_path):
    fake = tree('v2')
    fake.cgroup('app', usage=310 * M)
    assert 'high=100M' in refused(run_module, {'cgroup': 'app', 'high': '100M'}, tmp_path)


def test_force_on_v1_reports_the_kernel_refusal(tree, run_module):
    fake = tree('hybrid')
    fake.cgroup('app', usage=310 * M)
    result = run_module(memory_limit, {'cgroup': 'app', 'max': '64M', 'force': True})
    assert result['failed'] is True
    assert 'the kernel refused' in result['msg'] and 'busy' in result['msg']


def test_force_on_v2_applies_below_usage(tree, run_module):
    fake = tree('v2')
    fake.cgroup('app', usage=310 * M)
    result = run_module(memory_limit, {'cgroup': 'app', 'max': '64M', 'force': True})
    assert result['changed'] is True and result['usage_bytes'] == 310 * M
    assert fake.read('app', 'memory.max') == '%d\n' % (64 * M)


def test_refuses_missing_cgroup_without_create(tree, run_module, tmp_path):
    tree('hybrid')
    assert 'use create: true' in refused(run_module, {'cgroup': 'nope', 'max': '64M'}, tmp_path)


@pytest.mark.parametrize('value,words', [('150%', 'more than 100%'), ('lots', 'cannot read'), ('-1G', 'negative')])
def test_refuses_bad_sizes(tree, run_module, tmp_path, value, words):
    fake = tree('hybrid')
    fake.cgroup('app')
    assert words in refused(run_module, {'cgroup': 'app', 'max': value}, tmp_path)


def test_percent_of_ram(tree, run_module):
    fake = tree('hybrid')
    fake.cgroup('app')
    result = run_module(memory_limit, {'cgroup': 'app', 'max': '25%'})
    expected = faketree.MEM_TOTAL_KB * 1024 // 4
    assert result['limits']['max']['after'] == expected
    assert fake.read('app', 'memory.limit_in_bytes') == '%d\n' % expected


def test_infinity_lifts_a_v1_limit(tree, run_module):
    fake = tree('hybrid')
    fake.cgroup('app', **{'memory.limit_in_bytes': 64 * M})
    result = run_module(memory_limit, {'cgroup': 'app', 'max': 'infinity'})
    assert result['limits']['max'] == {'before': 64 * M, 'after': 'infinity'}
    assert fake.read('app', 'memory.limit_in_bytes') == '%d\n' % faketree.V1_MAX
    assert run_module(memory_limit, {'cgroup': 'app', 'max': 'infinity'})['changed'] is False


def test_moves_pids_once(tree, run_module, tmp_path):
    fake = tree('hybrid')
    fake.cgroup('app')
    fake.add_process(4242)
    first = run_module(memory_limit, {'cgroup': 'app', 'max': '64M', 'pids': [4242]})
    assert first['moved_pids'] == [4242]
    assert fake.read('app', 'cgroup.procs') == '4242\n'
    second = run_module(memory_limit, {'cgroup': 'app', 'max': '64M', 'pids': [4242]})
    assert second['changed'] is False and second['moved_pids'] == []
    assert 'no such process' in refused(run_module, {'cgroup': 'app', 'pids': [999999]}, tmp_path)


def test_runtime_false_is_refused_for_cgroups(tree, run_module, tmp_path):
    tree('hybrid')
    assert 'runtime: false' in refused(run_module, {'cgroup': 'a', 'create': True, 'max': '1G', 'runtime': False},
                                       tmp_path)


def test_no_memory_controller(tree, run_module, tmp_path):
    fake = tree('hybrid')
    mounts = fake.path('proc', 'mounts')
    with open(mounts) as handle:
        lines = [line for line in handle if '/memory ' not in line]
    with open(mounts, 'w') as handle:
        handle.writelines(lines)
    assert 'no cgroup hierarchy with the memory controller' in refused(
        run_module, {'cgroup': 'a', 'create': True, 'max': '1G'}, tmp_path)


def test_pure_v1_layout(tree, run_module):
    fake = tree('v1')
    result = run_module(memory_limit, {'cgroup': 'a', 'create': True, 'max': '1G'})
    assert result['layout'] == 'v1' and result['cgroup_version'] == 'v1'
    assert fake.read('a', 'memory.limit_in_bytes') == '%d\n' % G


@pytest.mark.parametrize('args,words', [
    ({'cgroup': 'a', 'unit': 'a.service', 'max': '1G'}, 'mutually exclusive'),
    ({'max': '1G'}, 'one of the following is required'),
    ({'cgroup': '../etc', 'max': '1G'}, 'plain path'),
    ({'cgroup': '/', 'max': '1G'}, 'root cgroup'),
])
def test_bad_targets(tree, run_module, tmp_path, args, words):
    tree('hybrid')
    assert words in refused(run_module, args, tmp_path)


# ---- state=absent on cgroups

def test_absent_removes_an_empty_cgroup_we_created(tree, run_module):
    fake = tree('hybrid')
    run_module(memory_limit, {'cgroup': 'mine', 'create': True, 'max': '64M'})
    check = run_module(memory_limit, {'cgroup': 'mine', 'state': 'absent', '_ansible_check_mode': True})
    assert check['changed'] is True and check['removed'] is True
    assert os.path.isdir(os.path.join(fake.memory_root, 'mine'))
    result = run_module(memory_limit, {'cgroup': 'mine', 'state': 'absent'})
    assert result['changed'] is True and result['removed'] is True
    assert result['limits']['max'] == {'before': 64 * M, 'after': None}
    assert not os.path.exists(os.path.join(fake.memory_root, 'mine'))
    assert run_module(memory_limit, {'cgroup': 'mine', 'state': 'absent'})['changed'] is False


def test_absent_lifts_limits_of_a_cgroup_we_did_not_create(tree, run_module):
    fake = tree('hybrid')
    fake.cgroup('theirs', **{'memory.limit_in_bytes': 64 * M, 'memory.memsw.limit_in_bytes': 64 * M,
                             'memory.soft_limit_in_bytes': 32 * M})
    result = run_module(memory_limit, {'cgroup': 'theirs', 'state': 'absent'})
    assert result['changed'] is True and result['removed'] is False
    assert fake.read('theirs', 'memory.limit_in_bytes') == '%d\n' % faketree.V1_MAX
    assert fake.read('theirs', 'memory.soft_limit_in_bytes') == '%d\n' % faketree.V1_MAX
    assert result['limits']['max'] == {'before': 64 * M, 'after': 'infinity'}
    assert os.path.isdir(os.path.join(fake.memory_root, 'theirs'))
    assert run_module(memory_limit, {'cgroup': 'theirs', 'state': 'absent'})['changed'] is False


def test_absent_keeps_a_cgroup_we_created_while_it_holds_processes(tree, run_module):
    fake = tree('hybrid')
    fake.add_process(4242)
    run_module(memory_limit, {'cgroup': 'mine', 'create': True, 'max': '64M', 'pids': [4242]})
    result = run_module(memory_limit, {'cgroup': 'mine', 'state': 'absent'})
    assert result['removed'] is False and result['changed'] is True
    assert os.path.isdir(os.path.join(fake.memory_root, 'mine'))


def test_absent_refuses_values(tree, run_module, tmp_path):
    fake = tree('hybrid')
    fake.cgroup('a')
    assert 'takes no values; remove max' in refused(run_module, {'cgroup': 'a', 'state': 'absent', 'max': '1G'},
                                                    tmp_path)


# ---- cgroup v2

def test_v2_create_enables_memory_in_parents_then_idempotent(tree, run_module):
    fake = tree('v2')
    args = {'cgroup': 'batch/jobs', 'create': True, 'max': '1G', 'high': '768M', 'swap_max': '0', 'low': '128M',
            'min': '64M', 'oom_group': True}
    result = run_module(memory_limit, args)
    assert result['changed'] is True and result['cgroup_version'] == 'v2'
    assert 'memory' in fake.read_abs(fake.memory_root, 'cgroup.subtree_control').split()
    assert 'memory' in fake.read('batch', 'cgroup.subtree_control').split()
    assert fake.read('batch/jobs', 'memory.max') == '%d\n' % G
    assert fake.read('batch/jobs', 'memory.high') == '%d\n' % (768 * M)
    assert fake.read('batch/jobs', 'memory.swap.max') == '0\n'
    assert fake.read('batch/jobs', 'memory.low') == '%d\n' % (128 * M)
    assert fake.read('batch/jobs', 'memory.min') == '%d\n' % (64 * M)
    assert fake.read('batch/jobs', 'memory.oom.group') == '1\n'
    assert result['limits']['oom_group'] == {'before': None, 'after': True}
    again = run_module(memory_limit, args)
    assert again['changed'] is False
    assert again['limits']['max'] == {'before': G, 'after': G}


def test_v2_check_mode_predicts_the_real_run(tree, run_module):
    fake = tree('v2')
    args = {'cgroup': 'a/b', 'create': True, 'max': '100000001', 'oom_group': True, '_ansible_diff': True}
    predicted = run_module(memory_limit, dict(args, _ansible_check_mode=True))
    assert fake.writes == [] and not os.path.exists(os.path.join(fake.memory_root, 'a'))
    real = run_module(memory_limit, args)
    for key in ('changed', 'limits', 'created', 'diff'):
        assert predicted[key] == real[key], key
    assert real['limits']['max']['after'] == 99999744


def test_v2_existing_cgroup_without_memory_controller_needs_create(tree, run_module, tmp_path):
    fake = tree('v2')
    fake.cgroup('plain', enable=False)
    assert 'lacks memory in cgroup.subtree_control' in refused(run_module, {'cgroup': 'plain', 'max': '1G'}, tmp_path)
    result = run_module(memory_limit, {'cgroup': 'plain', 'max': '1G', 'create': True})
    assert result['changed'] is True
    assert fake.read('plain', 'memory.max') == '%d\n' % G


def test_v2_parent_with_processes_is_refused_before_any_change(tree, run_module, tmp_path):
    fake = tree('v2')
    fake.cgroup('busy', procs=[77], enable=False)
    assert 'holds processes' in refused(run_module, {'cgroup': 'busy/child', 'create': True, 'max': '1G'}, tmp_path)


@pytest.mark.parametrize('args', [
    {'max': '1G', 'low': '2G'}, {'max': '1G', 'min': 'infinity'}, {'min': '3G'},
])
def test_v2_refuses_protection_above_max(tree, run_module, tmp_path, args):
    fake = tree('v2')
    fake.cgroup('app', **{'memory.max': 2 * G})
    msg = refused(run_module, dict(args, cgroup='app'), tmp_path)
    assert 'above the hard limit' in msg


def test_v2_without_swap_controller(tree, run_module, tmp_path):
    fake = tree('v2', v2_swap=False)
    fake.cgroup('app')
    assert 'memory.swap.max' in refused(run_module, {'cgroup': 'app', 'swap_max': '0'}, tmp_path)


def test_v2_absent_resets_every_limit(tree, run_module):
    fake = tree('v2')
    fake.cgroup('app', **{'memory.max': G, 'memory.low': M, 'memory.oom.group': 1})
    result = run_module(memory_limit, {'cgroup': 'app', 'state': 'absent'})
    assert result['changed'] is True
    assert fake.read('app', 'memory.max') == 'max\n'
    assert fake.read('app', 'memory.low') == '0\n'
    assert fake.read('app', 'memory.oom.group') == '0\n'


# ---- systemd units

@pytest.fixture
def systemctl(tmp_path, monkeypatch):
    """A booted fake systemd: records systemctl calls, answers show from ``state``."""
    (tmp_path / 'run' / 'systemd' / 'system').mkdir(parents=True)
    calls = []
    state = {'MemoryCurrent': '[not set]', 'MemoryMax': 'infinity', 'MemoryHigh': 'infinity',
             'MemorySwapMax': 'infinity', 'MemoryLow': '0', 'MemoryMin': '0', 'OOMPolicy': 'stop',
             'ControlGroup': '/system.slice/app.service', 'version': 'systemd 252 (252.38-1~deb12u1)'}

    def run_command(self, argv, environ_update=None, **kwargs):
        calls.append(argv[1:])
        if argv[1] == '--version':
            return 0, state['version'] + '\n', ''
        if argv[1] == 'show':
            return 0, ''.join('%s=%s\n' % (k, v) for k, v in state.items() if k != 'version'), ''
        return 0, '', ''
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, name, *a, **k: '/usr/bin/' + name)
    return calls, state


def dropin(tmp_path, unit='app.service'):
    path = tmp_path / 'etc' / 'systemd' / 'system' / (unit + '.d') / '50-oomguard-memory.conf'
    return path.read_text() if path.exists() else None


def test_unit_dropin_and_daemon_reload(tree, run_module, systemctl, tmp_path):
    tree('v2')
    calls, _state = systemctl
    args = {'unit': 'app.service', 'max': '2G', 'high': '1.5G', 'swap_max': '0', 'oom_group': True}
    result = run_module(memory_limit, dict(args, _ansible_diff=True))
    assert result['changed'] is True and result['daemon_reload'] is True
    assert result['dropin'] == str(tmp_path / 'etc/systemd/system/app.service.d/50-oomguard-memory.conf')
    text = dropin(tmp_path)
    assert text.endswith('[Service]\nMemoryMax=2G\nMemoryHigh=1536M\nMemorySwapMax=0\nOOMPolicy=kill\n')
    assert result['diff'][0]['after'] == text and result['diff'][0]['before'] == ''
    assert result['diff'][1]['after'] == 'max = 2G\nhigh = 1536M\nswap_max = 0\noom_group = True\n'
    assert result['limits']['max'] == {'before': None, 'after': '2G'}
    assert ['daemon-reload'] in calls
    del calls[:]
    again = run_module(memory_limit, args)
    assert again['changed'] is False and again['daemon_reload'] is False
    assert ['daemon-reload'] not in calls


def test_unit_check_mode_writes_nothing(tree, run_module, systemctl, tmp_path):
    tree('v2')
    calls, _state = systemctl
    result = run_module(memory_limit, {'unit': 'batch.slice', 'max': '25%', '_ansible_check_mode': True,
                                       '_ansible_diff': True})
    assert result['changed'] is True and result['daemon_reload'] is True
    assert '[Slice]\nMemoryMax=25%\n' in result['diff'][0]['after']
    assert dropin(tmp_path, 'batch.slice') is None
    assert ['daemon-reload'] not in calls


def test_unit_absent_removes_our_dropin(tree, run_module, systemctl, tmp_path):
    tree('v2')
    calls, _state = systemctl
    run_module(memory_limit, {'unit': 'app', 'max': '1G'})
    result = run_module(memory_limit, {'unit': 'app', 'state': 'absent'})
    assert result['changed'] is True and result['limits']['max'] == {'before': '1G', 'after': None}
    assert dropin(tmp_path) is None
    assert not (tmp_path / 'etc/systemd/system/app.service.d').exists()
    assert calls.count(['daemon-reload']) == 2
    assert run_module(memory_limit, {'unit': 'app', 'state': 'absent'})['changed'] is False


def test_unit_refuses_max_below_usage(tree, run_module, systemctl, tmp_path):
    tree('v2')
    _calls, state = systemctl
    state['MemoryCurrent'] = '%d' % (500 * M)
    msg = refused(run_module, {'unit': 'app.service', 'max': '256M'}, tmp_path)
    assert 'current usage is 500M, above the requested 256M' in msg
    assert run_module(memory_limit, {'unit': 'app.service', 'max': '256M', 'force': True})['changed'] is True


def test_unit_refuses_low_above_running_max(tree, run_module, systemctl, tmp_path):
    tree('v2')
    _calls, state = systemctl
    state['MemoryMax'] = '%d' % G
    assert 'above the hard limit' in refused(run_module, {'unit': 'app.service', 'low': '2G'}, tmp_path)


@pytest.mark.parametrize('args,words', [
    ({'unit': 'batch.slice', 'oom_group': True}, 'only services and scopes'),
    ({'unit': 'app.service', 'create': True, 'max': '1G'}, 'raw cgroups only'),
    ({'unit': 'app.service', 'pids': [1], 'max': '1G'}, 'raw cgroups only'),
    ({'unit': 'web.socket', 'max': '1G'}, 'applies to'),
    ({'unit': 'app@.service', 'max': '1G'}, 'template'),
    ({'unit': 'app.service', 'state': 'absent', 'max': '1G'}, 'takes no values'),
    ({'unit': 'app.service', 'persist': False, 'runtime': False, 'max': '1G'}, 'would change nothing'),
    ({'unit': 'app.service', 'persist': False, 'oom_group': True}, 'needs persist: true'),
])
def test_unit_refusals(tree, run_module, systemctl, tmp_path, args, words):
    tree('v2')
    assert words in refused(run_module, args, tmp_path)


def test_unit_runtime_only_uses_set_property(tree, run_module, systemctl, tmp_path):
    tree('v2')
    calls, state = systemctl
    result = run_module(memory_limit, {'unit': 'app.service', 'persist': False, 'max': '1G', 'low': '0'})
    assert result['changed'] is True and result['dropin'] is None
    assert ['set-property', '--runtime', '--', 'app.service', 'MemoryMax=1G'] in calls
    assert dropin(tmp_path) is None
    state['MemoryMax'] = '%d' % G
    assert run_module(memory_limit, {'unit': 'app.service', 'persist': False, 'max': '1G'})['changed'] is False


def test_unit_without_running_systemd_writes_dropin_and_warns(tree, run_module, tmp_path, monkeypatch):
    tree('hybrid')
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, msg: warnings.append(msg))
    result = run_module(memory_limit, {'unit': 'app.service', 'max': '1G', 'high': '512M'})
    assert result['changed'] is True and result['daemon_reload'] is False
    assert 'MemoryMax=1G\n' in dropin(tmp_path)
    assert any('systemd is not running' in w for w in warnings)
    assert any('only on the unified (v2) cgroup hierarchy' in w for w in warnings)


def test_old_systemd_on_v1_gets_memory_limit(tree, run_module, systemctl, tmp_path):
    tree('hybrid')
    _calls, state = systemctl
    state['version'] = 'systemd 219'
    run_module(memory_limit, {'unit': 'app.service', 'max': '1G'})
    assert 'MemoryLimit=1G\n' in dropin(tmp_path)


def test_kernel_refusal_after_create_takes_the_new_cgroup_back(tree, run_module, tmp_path, monkeypatch):
    fake = tree('hybrid')
    real_write = fake.write

    def refuse_soft_limit(path, text):
        if path.endswith('memory.soft_limit_in_bytes'):
            fake._refuse(path, text, 22)
        real_write(path, text)
    monkeypatch.setattr(cgroups, 'write_file', refuse_soft_limit)
    before = snapshot(tmp_path)
    result = run_module(memory_limit, {'cgroup': 'batch/job', 'create': True, 'max': '64M', 'high': '32M'})
    assert result['failed'] is True and 'the kernel refused' in result['msg']
    assert not os.path.exists(os.path.join(fake.memory_root, 'batch'))
    assert snapshot(tmp_path) == before


def test_v1_new_cgroup_without_swap_accounting_has_no_swap_max(tree, run_module):
    tree('hybrid', swap_accounting=False)
    result = run_module(memory_limit, {'cgroup': 'a', 'create': True, 'max': '64M', '_ansible_check_mode': True})
    assert sorted(result['limits']) == ['high', 'max']


# ---- issue 15: hostile input and half-done changes


@pytest.mark.parametrize('layout, args', [
    ('hybrid', {'cgroup': 'app', 'max': '1G', 'high': '2G'}),
    ('v2', {'cgroup': 'app', 'max': '1G', 'high': '2G'}),
    ('v2', {'cgroup': 'app', 'max': '1G', 'high': '1025M'}),
])
def test_high_above_max_is_refused(tree, run_module, tmp_path, layout, args):
    tree(layout).cgroup('app')
    msg = refused(run_module, args, tmp_path)
    assert msg == ('high: refusing high=%s: it is above the hard limit max=1G, so it could never be reached; '
                   'lower high or raise max' % args['high'])


def test_high_above_the_current_max_is_refused_and_infinity_is_fine(tree, run_module, tmp_path):
    fake = tree('v2')
    fake.cgroup('app')
    run_module(memory_limit, {'cgroup': 'app', 'max': '1G'})
    assert 'above the hard limit max=1G' in refused(run_module, {'cgroup': 'app', 'high': '2G'}, tmp_path)
    assert run_module(memory_limit, {'cgroup': 'app', 'high': 'infinity'}).get('failed') is None
    assert run_module(memory_limit, {'cgroup': 'app', 'high': '512M'})['changed'] is True


def test_unit_high_above_max_is_refused(tree, run_module, systemctl, tmp_path):
    tree('v2')
    msg = refused(run_module, {'unit': 'app.service', 'max': '1G', 'high': '2G'}, tmp_path)
    assert msg.startswith('high: refusing high=2G: it is above the hard limit max=1G')


def test_v1_swap_max_alone_without_a_limit_is_refused_not_dropped(tree, run_module, tmp_path):
    fake = tree('hybrid')
    fake.cgroup('app')
    msg = refused(run_module, {'cgroup': 'app', 'swap_max': '256M'}, tmp_path)
    assert msg.startswith("swap_max: cannot limit the swap of cgroup 'app' on cgroup v1 without a memory limit")
    assert msg.endswith('give max as well')
    new = refused(run_module, {'cgroup': 'new', 'create': True, 'swap_max': '256M'}, tmp_path)
    assert new.startswith('swap_max: ')
    # With a max (given now, or set before) it is written as memsw = max + swap_max.
    run_module(memory_limit, {'cgroup': 'app', 'max': '64M'})
    result = run_module(memory_limit, {'cgroup': 'app', 'swap_max': '32M'})
    assert result['changed'] is True and fake.read('app', 'memory.memsw.limit_in_bytes') == '%d\n' % (96 * M)


def test_create_with_a_kernel_thread_pid_is_refused_before_anything(tree, run_module, tmp_path):
    fake = tree('hybrid')
    fake.add_process(2, comm='kthreadd', kernel=True)
    msg = refused(run_module, {'cgroup': 'batch/job', 'create': True, 'max': '64M', 'pids': [2]}, tmp_path)
    assert msg == "pids: cannot move PID 2 (kthreadd) into cgroup 'batch/job': it is a kernel thread, which the " \
                  "kernel keeps in the root cgroup"
    assert not os.path.exists(os.path.join(fake.memory_root, 'batch'))
    assert not os.path.exists(str(tmp_path / 'run' / 'oomguard'))


def test_kernel_refusing_a_move_takes_back_moves_cgroup_and_record(tree, run_module, tmp_path):
    fake = tree('hybrid')
    fake.add_process(4242)
    fake.add_process(4343)
    fake._put(fake.memory_root, 'cgroup.procs', '4242\n4343\n')
    real_write = fake.write

    def refuse_second(path, text):
        if path.endswith('cgroup.procs') and text.strip() == '4343' and 'batch' in path:
            fake._refuse(path, text, 22)
        real_write(path, text)
    monkeypatch_write = pytest.MonkeyPatch()
    monkeypatch_write.setattr(cgroups, 'write_file', refuse_second)
    try:
        before = snapshot(tmp_path)
        result = run_module(memory_limit, {'cgroup': 'batch/job', 'create': True, 'max': '64M',
                                           'pids': [4242, 4343]})
    finally:
        monkeypatch_write.undo()
    assert result['failed'] is True
    assert result['msg'].startswith('pids: cannot move PID 4343 into %s: the kernel refused'
                                    % os.path.join(fake.memory_root, 'batch', 'job'))
    assert not os.path.exists(os.path.join(fake.memory_root, 'batch'))
    after = snapshot(tmp_path)
    # PID 4242 went back to where it was (the root cgroup): the tree is as before.
    procs = os.path.join(fake.memory_root, 'cgroup.procs')
    assert sorted(after.pop(procs).split()) == sorted(before.pop(procs).split()) == ['4242', '4343']
    assert after == before


def test_boolean_pids_are_refused(tree, run_module, tmp_path):
    tree('hybrid').cgroup('app')
    assert refused(run_module, {'cgroup': 'app', 'pids': [True]}, tmp_path).startswith('pids: [True] is a boolean')


def test_unit_daemon_reload_false_leaves_the_reload_to_a_handler(tree, run_module, systemctl, tmp_path):
    tree('v2')
    calls, _state = systemctl
    result = run_module(memory_limit, {'unit': 'app.service', 'max': '1G', 'daemon_reload': False})
    assert result['changed'] is True and result['daemon_reload'] is False
    assert 'MemoryMax=1G' in dropin(tmp_path)
    assert ['daemon-reload'] not in calls
    run_module(memory_limit, {'unit': 'app.service', 'max': '2G'})
    assert ['daemon-reload'] in calls
