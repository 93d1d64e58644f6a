"""Container detection on fake roots, including a stale /.dockerenv in a VM (as on the testbed)."""

from ansible_collections.oomguard.memory.plugins.module_utils.container import detect_container, parse_root_mount
from faketree import tree

VM_MOUNTINFO = ('22 27 0:21 / /proc rw,relatime - proc proc rw\n'
                '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n')
DOCKER_MOUNTINFO = ('500 400 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/l1\n'
                    '501 500 0:51 / /proc rw - proc proc rw\n')
BIND_MOUNTINFO = '600 500 254:0 /var/lib/lxc/c1/rootfs / rw - ext4 /dev/vda rw\n'


def test_plain_host(tmp_path):
    root = tree(tmp_path, {'/proc/self/mountinfo': VM_MOUNTINFO})
    assert detect_container(root)['container'] is None


def test_pid1_container_env(tmp_path):
    root = tree(tmp_path, {'/proc/1/environ': 'PATH=/bin\0container=lxc\0'})
    found = detect_container(root)
    assert found['container'] == 'lxc'
    assert 'container=lxc' in found['evidence']


def test_podman_marker(tmp_path):
    root = tree(tmp_path, {'/run/.containerenv': ''})
    assert detect_container(root)['container'] == 'podman'


def test_docker_marker_with_overlay_root(tmp_path):
    root = tree(tmp_path, {'/.dockerenv': '', '/proc/self/mountinfo': DOCKER_MOUNTINFO})
    found = detect_container(root)
    assert found['container'] == 'docker'
    assert 'overlay' in found['evidence']


def test_docker_marker_with_bind_mounted_root(tmp_path):
    root = tree(tmp_path, {'/.dockerenv': '', '/proc/self/mountinfo': BIND_MOUNTINFO})
    assert detect_container(root)['container'] == 'docker'


def test_stale_docker_marker_in_a_vm_is_not_a_container(tmp_path):
    root = tree(tmp_path, {'/.dockerenv': '', '/proc/self/mountinfo': VM_MOUNTINFO})
    found = detect_container(root)
    assert found['container'] is None
    assert 'stale' in found['evidence']


def test_parse_root_mount():
    assert parse_root_mount(VM_MOUNTINFO) == ('ext4', '/')
    assert parse_root_mount(BIND_MOUNTINFO) == ('ext4', '/var/lib/lxc/c1/rootfs')
    assert parse_root_mount('') == (None, None)
