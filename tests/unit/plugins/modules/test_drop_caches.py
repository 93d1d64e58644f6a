"""drop_caches and memory_state on a fake /proc (the real write is root-only and global)."""
from ansible_collections.oomguard.memory.plugins.modules import drop_caches, memory_state
from faketree import write


def test_check_mode_writes_nothing(run_module, tmp_path, monkeypatch):
    write(tmp_path, '/proc/meminfo', 'MemTotal: 1000 kB\nMemAvailable: 500 kB\nCached: 300 kB\n')
    target = write(tmp_path, '/proc/sys/vm/drop_caches', '0\n')
    monkeypatch.setattr(drop_caches, 'ROOT', str(tmp_path))
    result = run_module(drop_caches, {'_ansible_check_mode': True})
    assert result['changed'] is True and result['freed_kb'] == 0
    assert result['actions'] == ['sync', 'write 1 to /proc/sys/vm/drop_caches (clean page cache only)']
    assert 'page cache only' in result['note']
    assert open(target).read() == '0\n'


def test_writes_1_and_measures(run_module, tmp_path, monkeypatch):
    write(tmp_path, '/proc/meminfo', 'MemTotal: 1000 kB\nMemAvailable: 500 kB\nCached: 300 kB\n')
    target = write(tmp_path, '/proc/sys/vm/drop_caches', '0\n')
    monkeypatch.setattr(drop_caches, 'ROOT', str(tmp_path))
    result = run_module(drop_caches, {'sync': False})
    assert open(target).read() == '1\n' and result['actions'] == [
        'write 1 to /proc/sys/vm/drop_caches (clean page cache only)']


def test_a_kernel_without_drop_caches_is_one_sentence(run_module, tmp_path, monkeypatch):
    write(tmp_path, '/proc/meminfo', 'MemTotal: 1000 kB\nMemAvailable: 500 kB\nCached: 300 kB\n')
    monkeypatch.setattr(drop_caches, 'ROOT', str(tmp_path))
    result = run_module(drop_caches, {})
    assert result['failed'] and 'cannot drop caches on request' in result['msg']


def test_memory_state_low_threshold(run_module, tmp_path, monkeypatch):
    write(tmp_path, '/proc/meminfo', 'MemTotal: 1000000 kB\nMemAvailable: 50000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n')
    write(tmp_path, '/proc/swaps', 'Filename Type Size Used Priority\n')
    monkeypatch.setattr(memory_state, 'ROOT', str(tmp_path))
    result = run_module(memory_state, {'low_threshold': '10%'})
    assert result['low'] is True and result['state']['pressure'] is None and result['state']['oom_kill'] is None
    assert run_module(memory_state, {'low_threshold': '10M'})['low'] is False
    assert run_module(memory_state, {})['low'] is None
    assert 'threshold: cannot read' in run_module(memory_state, {'low_threshold': 'x'})['msg']
