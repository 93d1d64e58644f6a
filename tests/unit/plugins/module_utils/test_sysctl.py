"""sysctl.d precedence as systemd-sysctl applies it, on a fake tree."""
import os

from ansible_collections.oomguard.memory.plugins.module_utils.sysctl import (
    boot_setting, config_files, normalize_key, parse_sysctl_conf, read_files, same_file)
from faketree import write


def test_parse_skips_comments_and_normalizes_keys():
    text = '# c\n; c\n\nvm.swappiness=5\n -vm/swappiness = 7 \nnot an assignment\n'
    assert parse_sysctl_conf(text) == [('vm.swappiness', '5', 4), ('vm.swappiness', '7', 5)]
    assert normalize_key('vm/swappiness') == 'vm.swappiness'


def test_order_by_name_across_directories_then_sysctl_conf_last(tmp_path):
    write(tmp_path, '/usr/lib/sysctl.d/10-a.conf', 'vm.swappiness = 1\n')
    write(tmp_path, '/etc/sysctl.d/50-b.conf', 'vm.swappiness = 2\n')
    write(tmp_path, '/run/sysctl.d/70-c.conf', 'vm.swappiness = 3\n')
    write(tmp_path, '/lib/sysctl.d/99-z.conf', 'kernel.pid_max = 5\n')
    write(tmp_path, '/etc/sysctl.d/README', 'vm.swappiness = 99\n')
    write(tmp_path, '/etc/sysctl.conf', '# nothing\n')
    paths = config_files(str(tmp_path))
    assert paths == ['/usr/lib/sysctl.d/10-a.conf', '/etc/sysctl.d/50-b.conf', '/run/sysctl.d/70-c.conf',
                     '/lib/sysctl.d/99-z.conf', '/etc/sysctl.conf']
    assert boot_setting(read_files(paths, str(tmp_path)), 'vm.swappiness') == ('3', '/run/sysctl.d/70-c.conf')


def test_etc_hides_same_name_in_usr_lib_and_dev_null_masks(tmp_path):
    write(tmp_path, '/usr/lib/sysctl.d/60-x.conf', 'vm.swappiness = 80\n')
    write(tmp_path, '/etc/sysctl.d/60-x.conf', 'vm.swappiness = 20\n')
    write(tmp_path, '/usr/lib/sysctl.d/70-masked.conf', 'vm.swappiness = 90\n')
    os.symlink('/dev/null', os.path.join(str(tmp_path), 'etc/sysctl.d/70-masked.conf'))
    paths = config_files(str(tmp_path))
    assert paths == ['/etc/sysctl.d/60-x.conf']
    assert boot_setting(read_files(paths, str(tmp_path)), 'vm.swappiness') == ('20', '/etc/sysctl.d/60-x.conf')


def test_sysctl_conf_wins_over_every_sysctl_d_file(tmp_path):
    write(tmp_path, '/etc/sysctl.d/99-zzz.conf', 'vm.swappiness = 1\n')
    write(tmp_path, '/etc/sysctl.conf', 'vm.swappiness = 60\n')
    paths = config_files(str(tmp_path))
    assert boot_setting(read_files(paths, str(tmp_path)), 'vm.swappiness') == ('60', '/etc/sysctl.conf')


def test_nothing_sets_it(tmp_path):
    assert config_files(str(tmp_path)) == []
    assert boot_setting([], 'vm.swappiness') == (None, None)


def test_debian_symlink_is_the_same_file(tmp_path):
    write(tmp_path, '/etc/sysctl.conf', 'vm.swappiness = 60\n')
    os.makedirs(os.path.join(str(tmp_path), 'etc/sysctl.d'))
    os.symlink('../sysctl.conf', os.path.join(str(tmp_path), 'etc/sysctl.d/99-sysctl.conf'))
    assert same_file('/etc/sysctl.d/99-sysctl.conf', '/etc/sysctl.conf', str(tmp_path))
    assert not same_file('/etc/sysctl.d/99-sysctl.conf', '/etc/sysctl.d/nope.conf', str(tmp_path))
