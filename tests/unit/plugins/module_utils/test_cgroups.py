"""cgroups.py: names, page rounding, v1/v2 value mapping, write ordering, fake kernel trees."""
import os

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import cgroups, procfs
import faketree


PAGE = 4096
M = 1024 * 1024
V1_MAX = 9223372036854771712


# ---- names

@pytest.mark.parametrize('given,expected', [
    ('batch/jobs', 'batch/jobs'), ('/batch/jobs/', 'batch/jobs'), ('a', 'a'), ('a//b', 'a/b'),
    ('oomguard-test-1.x', 'oomguard-test-1.x'),
])
def test_normalize_accepts_plain_paths(given, expected):
    assert cgroups.normalize_cgroup_path(given) == expected


@pytest.mark.parametrize('bad,words', [
    ('', 'root cgroup'), ('/', 'root cgroup'), ('a/../b', 'plain path'), ('.', 'plain path'),
    ('a/\nb', 'plain path'), ('a/memory.max', 'interface file'), ('cgroup.procs', 'interface file'),
])
def test_normalize_refuses(bad, words):
    with pytest.raises(cgroups.CgroupError) as caught:
        cgroups.normalize_cgroup_path(bad)
    assert words in str(caught.value)


def test_cgroup_dir_joins_under_root():
    assert cgroups.cgroup_dir('/sys/fs/cgroup/memory', '/a/b') == '/sys/fs/cgroup/memory/a/b'


# ---- values

def test_kernel_rounds_down_to_pages():
    assert cgroups.kernel_rounded(100000001, PAGE) == 99999744
    assert cgroups.kernel_rounded(64 * M, PAGE) == 64 * M
    assert cgroups.kernel_rounded(4095, PAGE) == 0
    assert cgroups.kernel_rounded(None, PAGE) is None
    assert cgroups.kernel_rounded(True, PAGE) is True


def test_v1_unlimited_is_long_max_in_pages():
    assert cgroups.v1_unlimited(4096) == V1_MAX
    assert cgroups.v1_unlimited(65536) == (2 ** 63 - 1) // 65536 * 65536


@pytest.mark.parametrize('text,version,name,expected', [
    ('%d\n' % V1_MAX, 'v1', 'max', None), ('67108864\n', 'v1', 'max', 64 * M), ('max\n', 'v2', 'max', None),
    ('0\n', 'v2', 'low', 0), ('1\n', 'v2', 'oom_group', True), ('0\n', 'v2', 'oom_group', False),
])
def test_parse_value(text, version, name, expected):
    assert cgroups.parse_value(text, version, name, PAGE) == expected


def test_parse_value_rejects_garbage():
    with pytest.raises(cgroups.CgroupError):
        cgroups.parse_value('lots', 'v2')


@pytest.mark.parametrize('value,version,name,expected', [
    (None, 'v1', 'max', '-1'), (None, 'v2', 'max', 'max'), (64 * M, 'v1', 'max', '67108864'),
    (True, 'v2', 'oom_group', '1'), (False, 'v2', 'oom_group', '0'),
])
def test_interface_text(value, version, name, expected):
    assert cgroups.interface_text(value, version, name) == expected


def test_limit_files_map_each_version():
    assert cgroups.limit_files('v1') == {'max': 'memory.limit_in_bytes', 'high': 'memory.soft_limit_in_bytes',
                                         'swap_max': 'memory.memsw.limit_in_bytes'}
    assert cgroups.limit_files('v2')['swap_max'] == 'memory.swap.max'
    assert cgroups.limit_files('v2')['oom_group'] == 'memory.oom.group'
    with pytest.raises(cgroups.CgroupError):
        cgroups.limit_files('v3')


# ---- v1 write planning (memsw >= limit at every moment)

UNLIMITED_V1 = {'max': None, 'high': None, 'swap_max': None}


def test_v1_sets_max_only():
    assert cgroups.v1_writes(UNLIMITED_V1, {'max': 64 * M}, PAGE) == [('memory.limit_in_bytes', '67108864')]


def test_v1_equal_after_rounding_writes_nothing():
    current = {'max': 99999744, 'high': None, 'swap_max': None}
    assert cgroups.v1_writes(current, {'max': 100000001}, PAGE) == []


def test_v1_lowering_with_swap_writes_limit_first():
    current = {'max': 512 * M, 'high': None, 'swap_max': 0}
    writes = cgroups.v1_writes(current, {'max': 64 * M, 'swap_max': 16 * M}, PAGE)
    assert writes == [('memory.limit_in_bytes', '67108864'), ('memory.memsw.limit_in_bytes', '83886080')]


def test_v1_raising_past_memsw_writes_memsw_first():
    current = {'max': 64 * M, 'high': None, 'swap_max': 0}
    writes = cgroups.v1_writes(current, {'max': 256 * M, 'swap_max': 0}, PAGE)
    assert writes == [('memory.memsw.limit_in_bytes', '268435456'), ('memory.limit_in_bytes', '268435456')]


def test_v1_unlimiting_writes_memsw_first():
    current = {'max': 64 * M, 'high': None, 'swap_max': 0}
    writes = cgroups.v1_writes(current, {'max': None, 'swap_max': None}, PAGE)
    assert writes == [('memory.memsw.limit_in_bytes', '-1'), ('memory.limit_in_bytes', '-1')]


def test_v1_swap_only_uses_current_max():
    current = {'max': 64 * M, 'high': None, 'swap_max': None}
    assert cgroups.v1_writes(current, {'swap_max': 32 * M}, PAGE) == [('memory.memsw.limit_in_bytes', '100663296')]


def test_v1_max_above_finite_memsw_without_swap_max_is_refused():
    current = {'max': 64 * M, 'high': None, 'swap_max': 0}
    with pytest.raises(cgroups.CgroupError) as caught:
        cgroups.v1_writes(current, {'max': 128 * M}, PAGE)
    assert 'give swap_max as well' in str(caught.value)


def test_v1_swap_without_accounting_is_refused():
    with pytest.raises(cgroups.CgroupError) as caught:
        cgroups.v1_writes({'max': None, 'high': None}, {'swap_max': 0}, PAGE)
    assert 'swapaccount=1' in str(caught.value)


def test_v1_high_is_the_soft_limit():
    assert cgroups.v1_writes(UNLIMITED_V1, {'high': 32 * M}, PAGE) == [('memory.soft_limit_in_bytes', '33554432')]


def test_v1_expected_after_rounds_memsw_on_its_own():
    after = cgroups.expected_after(UNLIMITED_V1, {'max': 100000001, 'swap_max': 5000}, 'v1', PAGE)
    assert after['max'] == 99999744
    assert after['swap_max'] == (100000001 + 5000) // PAGE * PAGE - 99999744


def test_v1_expected_after_keeps_memsw_when_only_max_moves():
    current = {'max': 64 * M, 'high': None, 'swap_max': 64 * M}
    after = cgroups.expected_after(current, {'max': 96 * M}, 'v1', PAGE)
    assert after['swap_max'] == 32 * M


# ---- v2 write planning

def test_v2_writes_only_differences_in_fixed_order():
    current = {'max': None, 'high': None, 'swap_max': None, 'low': 0, 'min': 0, 'oom_group': False}
    writes = cgroups.v2_writes(current, {'oom_group': True, 'low': 0, 'max': 64 * M, 'high': None}, PAGE)
    assert writes == [('memory.max', '67108864'), ('memory.oom.group', '1')]


def test_v2_missing_swap_file_is_refused():
    with pytest.raises(cgroups.CgroupError) as caught:
        cgroups.v2_writes({'max': None}, {'swap_max': 0}, PAGE)
    assert 'memory.swap.max' in str(caught.value)


# ---- reading fake trees laid out as the kernel does

def test_read_v1_tree(tmp_path):
    fake = faketree.FakeCgroupfs(tmp_path, 'hybrid')
    directory = fake.cgroup('app', usage=5 * M, procs=[321], **{
        'memory.limit_in_bytes': 64 * M, 'memory.memsw.limit_in_bytes': 80 * M})
    assert cgroups.read_limits(directory, 'v1') == {'max': 64 * M, 'high': None, 'swap_max': 16 * M}
    assert cgroups.read_usage(directory, 'v1') == 5 * M
    assert cgroups.read_procs(directory) == [321]


def test_read_v1_tree_without_swap_accounting(tmp_path):
    fake = faketree.FakeCgroupfs(tmp_path, 'v1', swap_accounting=False)
    directory = fake.cgroup('app')
    assert cgroups.read_limits(directory, 'v1') == {'max': None, 'high': None}


def test_read_v2_tree(tmp_path):
    fake = faketree.FakeCgroupfs(tmp_path, 'v2')
    files = {'memory.high': 256 * M, 'memory.oom.group': 1}
    directory = fake.cgroup('system.slice/app.service', usage=300 * M, **files)
    assert cgroups.read_limits(directory, 'v2') == {'max': None, 'high': 256 * M, 'swap_max': None, 'low': 0,
                                                    'min': 0, 'oom_group': True}
    assert cgroups.read_usage(directory, 'v2') == 300 * M


@pytest.mark.parametrize('layout,version,root', [
    ('v1', 'v1', 'sys/fs/cgroup/memory'), ('hybrid', 'v1', 'sys/fs/cgroup/memory'), ('v2', 'v2', 'sys/fs/cgroup'),
])
def test_fake_trees_are_detected_like_real_ones(tmp_path, layout, version, root):
    faketree.FakeCgroupfs(tmp_path, layout)
    found = procfs.detect_cgroup_layout(str(tmp_path))
    assert found['layout'] == layout
    assert found['memory_version'] == version
    assert found['memory_root'] == os.path.join(str(tmp_path), root)


def test_v2_missing_subtree_control_lists_parents_root_first(tmp_path):
    fake = faketree.FakeCgroupfs(tmp_path, 'v2')
    fake.cgroup('batch', enable=False)
    root = fake.memory_root
    assert cgroups.v2_missing_subtree_control(root, 'batch/jobs') == [root, os.path.join(root, 'batch')]
    fake.cgroup('batch/jobs')
    assert cgroups.v2_missing_subtree_control(root, 'batch/jobs') == []


def test_v2_enable_memory_refuses_a_parent_with_processes(tmp_path, monkeypatch):
    fake = faketree.FakeCgroupfs(tmp_path, 'v2')
    fake.patch(monkeypatch)
    busy = fake.cgroup('busy', procs=[77])
    with pytest.raises(cgroups.CgroupError) as caught:
        cgroups.v2_enable_memory(busy)
    assert 'holds processes' in str(caught.value)


def test_v2_enable_memory_refuses_when_not_offered(tmp_path, monkeypatch):
    fake = faketree.FakeCgroupfs(tmp_path, 'v2')
    fake.patch(monkeypatch)
    plain = fake.cgroup('plain', enable=False)
    with pytest.raises(cgroups.CgroupError) as caught:
        cgroups.v2_enable_memory(plain)
    assert 'does not offer memory' in str(caught.value)


def test_write_file_never_creates_files(tmp_path):
    with pytest.raises(cgroups.CgroupError) as caught:
        cgroups.write_file(str(tmp_path / 'memory.max'), '1')
    assert 'cannot open' in str(caught.value)
    assert not (tmp_path / 'memory.max').exists()


def test_write_file_replaces_content(tmp_path):
    target = tmp_path / 'memory.max'
    target.write_text('max\n')
    cgroups.write_file(str(target), '64')
    assert target.read_text() == '64'
