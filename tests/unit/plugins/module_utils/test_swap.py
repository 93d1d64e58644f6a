"""module_utils/swap: command failures and the undo after a failed /etc/fstab write (the auto size
table is written out in tests/unit/plugins/modules/test_swapfile.py)."""
import os

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import swap
from ansible_collections.oomguard.memory.plugins.module_utils.files import FileError


def test_failed_command_names_the_signal_and_hides_the_temp_name():
    tmp = '/data/.x.swap.oomguard-swap-tmp'
    msg = swap.command_failure(['fallocate', '-l', '1024', tmp], -25, '', '', '/data/x.swap', tmp)
    assert msg == 'fallocate -l 1024 /data/x.swap failed: killed by SIGXFSZ'
    assert 'oomguard-swap-tmp' not in msg
    assert swap.command_failure(['mkswap', tmp], 1, '', '', '/data/x.swap', tmp) == (
        'mkswap /data/x.swap failed: exit status 1 and no error output')
    assert swap.command_failure(['mkswap', tmp], 1, '', 'mkswap: %s: bad\n' % tmp, '/data/x.swap', tmp) == (
        'mkswap /data/x.swap failed: mkswap: /data/x.swap: bad')


class Runner(object):
    def __init__(self):
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv)
        return 0, '', ''


def _applier(tmp_path, monkeypatch, active, kind, state='present'):
    seen = swap.Observed(str(tmp_path / 'swap'))
    seen.active = active
    seen.kind = kind
    todo = swap.Plan()
    todo.fstab_changed = True
    todo.fstab_after = 'x\n'
    params = {'state': state, 'priority': None, 'method': 'auto'}
    runner = Runner()

    def refuse(path, text, mode=0o644):
        raise FileError('cannot write /etc/fstab: Operation not permitted')
    monkeypatch.setattr(swap, 'atomic_write', refuse)
    return swap.Applier(seen, todo, params, runner, '/etc/fstab'), todo, runner


def test_fstab_failure_after_swapon_takes_the_new_file_back(tmp_path, monkeypatch):
    applier, todo, runner = _applier(tmp_path, monkeypatch, None, None)
    todo.swapon = True
    todo.build = 'create'
    monkeypatch.setattr(applier, 'create', lambda: (tmp_path / 'swap').write_bytes(b'x'))
    with pytest.raises(swap.SwapError) as caught:
        applier.apply()
    assert str(caught.value) == ('cannot write /etc/fstab: Operation not permitted; took back the swapon and the '
                                 'new file %s: the host is as before the task' % (tmp_path / 'swap'))
    assert runner.calls[-1] == ['swapoff', str(tmp_path / 'swap')]
    assert not os.path.exists(str(tmp_path / 'swap'))


def test_fstab_failure_on_absent_swaps_the_file_on_again(tmp_path, monkeypatch):
    active = {'path': str(tmp_path / 'swap'), 'priority': 5, 'used_kb': 0}
    applier, todo, runner = _applier(tmp_path, monkeypatch, active, 'file', state='absent')
    (tmp_path / 'swap').write_bytes(b'x')
    todo.swapoff = todo.delete = True
    with pytest.raises(swap.SwapError) as caught:
        applier.apply()
    assert str(caught.value).endswith('was swapped on again: swap is as before the task')
    assert runner.calls == [['swapoff', str(tmp_path / 'swap')], ['swapon', '-p', '5', str(tmp_path / 'swap')]]
    assert os.path.exists(str(tmp_path / 'swap')), 'the file must stay when its fstab entry stays'
