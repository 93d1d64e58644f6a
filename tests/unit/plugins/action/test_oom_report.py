"""The name a host is reported under: ansible-pull and make run report the machine, not 'localhost'."""
import socket

from ansible_collections.oomguard.memory.plugins.action.oom_report import _host_name


def test_local_runs_are_named_after_the_machine_so_pull_reports_merge():
    assert _host_name('localhost', {}) == socket.gethostname()
    assert _host_name('127.0.0.1', {'ansible_connection': 'local'}) == socket.gethostname()


def test_remote_hosts_keep_their_inventory_name_and_the_override_wins():
    assert _host_name('localhost', {'ansible_connection': 'ssh'}) == 'localhost'
    assert _host_name('web1', {}) == 'web1'
    assert _host_name('localhost', {'oom_report_host_name': 'db7'}) == 'db7'
