"""playbooks/oom_report.yml against a small fleet for real: this machine (localhost) after a real
OOM kill in a cgroup v1 memory cgroup, the systemd testbed container (podman connection), an
unreachable host (SSH to a closed loopback port) and a host whose module run fails (a missing
Python). Proves: one report.json entry per host with the right status, report.md, a junit.xml
that passes the JUnit schema check, the gate failing exactly the hosts it should (after the
files are written), bad gate values refused before anything runs, and the merge playbook."""
import json
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET

import pytest

from harness import ROOT, ansible_env, run_playbook
from junit_schema import check
from kernel import memcg_oom_kill, vmstat_oom_kill

MEMCG_ROOT = '/sys/fs/cgroup/memory'
PLAYBOOK = os.path.join(ROOT, 'playbooks', 'oom_report.yml')
MERGE = os.path.join(ROOT, 'playbooks', 'oom_report_merge.yml')
CONTAINERS_CONF = os.path.join(ROOT, 'tests', 'testbed', 'containers.conf')


def _write(path, text):
    with open(path, 'w') as handle:
        handle.write(text)


@pytest.fixture(scope='module')
def oom_kill():
    """A python3 process OOM-killed for real in a 64M v1 memory cgroup (memsw limited too, so an
    active swap cannot absorb it); the cgroup is removed afterwards, also on failure."""
    if not os.path.isfile(os.path.join(MEMCG_ROOT, 'memory.limit_in_bytes')):
        pytest.skip('no cgroup v1 memory hierarchy at %s: cannot make a real memcg OOM kill here' % MEMCG_ROOT)
    with memcg_oom_kill(MEMCG_ROOT, 'oomguard-report') as kill:
        assert vmstat_oom_kill() > kill['before']
        yield {'pid': kill['pid'], 'since': kill['started'].strftime('%Y-%m-%dT%H:%M:%SZ')}


@pytest.fixture(scope='module')
def fleet(oom_kill, systemd_container):
    """An inventory of four hosts; the report window starts just before the kill."""
    tmp = tempfile.mkdtemp(prefix='oomguard-report-it-')
    inventory = os.path.join(tmp, 'inventory.ini')
    _write(inventory, '\n'.join([
        'localhost ansible_connection=local',
        '%s ansible_connection=containers.podman.podman' % systemd_container.name,
        'ghost ansible_host=127.0.0.1 ansible_port=9 ansible_connection=ssh ansible_user=nobody '
        "ansible_ssh_common_args='-o ConnectTimeout=5 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'",
        'broken ansible_connection=local ansible_python_interpreter=/nonexistent/python3',
        '[all:vars]', 'oom_report_since=%s' % oom_kill['since'], '']))
    yield {'inventory': inventory, 'tmp': tmp, 'container': systemd_container.name, 'pid': oom_kill['pid']}
    subprocess.run(['rm', '-rf', tmp], check=False)


def run_report(fleet, name, **extra):
    out = os.path.join(fleet['tmp'], name)
    extra_vars = dict({'oom_report_dir': out}, **extra)
    env = ansible_env(CONTAINERS_CONF=CONTAINERS_CONF, ANSIBLE_PIPELINING='true', ANSIBLE_FORKS='5')
    argv = ['-i', fleet['inventory'], PLAYBOOK]
    recap = run_playbook(argv, False, False, extra_vars, env)
    return recap, out


def load(out):
    with open(os.path.join(out, 'report.json')) as handle:
        report = json.load(handle)
    with open(os.path.join(out, 'junit.xml')) as handle:
        junit = handle.read()
    with open(os.path.join(out, 'report.md')) as handle:
        markdown = handle.read()
    return report, junit, markdown


def by_inventory(report):
    return dict((h['inventory_name'], h) for h in report['hosts'])


def failing_lines(output):
    """The hosts the gate task failed, from the first word of its one line per host."""
    gate = output.split('TASK [Fail the hosts the gate fails', 1)[-1] if 'TASK [Fail the hosts' in output else ''
    return sorted(line.split('"msg": "', 1)[1].split(':', 1)[0] for line in gate.splitlines()
                  if line.startswith('fatal: [') and '"msg": "' in line)


def test_report_of_four_hosts_with_the_default_gate(fleet):
    recap, out = run_report(fleet, 'kills')
    assert recap.rc == 2, recap.output[-3000:]
    report, junit, markdown = load(out)
    hosts = by_inventory(report)
    assert set(hosts) == {'localhost', fleet['container'], 'ghost', 'broken'}
    assert report['schema_version'] == 1 and report['fail_on'] == 'kills'
    local, box = hosts['localhost'], hosts[fleet['container']]
    assert local['status'] == 'ok' and box['status'] == 'ok'
    assert hosts['ghost']['status'] == 'unreachable' and 'ssh' in hosts['ghost']['error'].lower()
    assert hosts['broken']['status'] == 'failed' and '/nonexistent/python3' in hosts['broken']['error']
    # the real kill, found through oom_facts' parser, in the host entry and its audit
    assert any(e['victim'] and e['victim']['pid'] == fleet['pid'] for e in local['oom']['events'])
    assert local['oom']['summary']['kills'] >= 1
    assert any(f['id'] == 'oom_kills' for f in local['audit']['findings'])
    assert box['oom']['summary']['kills'] == 0
    assert [c['id'] for c in box['audit']['checks']][0] == 'oom_kills'
    # the gate: the kill host, the unreachable and the failed host; not the container
    assert report['fleet']['failing'] == sorted([local['name'], 'ghost', 'broken'])
    assert failing_lines(recap.output) == sorted(['localhost', 'ghost', 'broken'])
    assert ('fatal: [%s]' % fleet['container']) not in recap.output
    # JUnit: valid, a suite per host, a case per check, failure for the kill, error for the others
    assert check(junit) == []
    root = ET.fromstring(junit)
    suites = dict((s.get('name'), s) for s in root.findall('testsuite'))
    assert set(suites) == set(h['name'] for h in report['hosts'])
    kill_case = [c for c in suites[local['name']].findall('testcase') if c.get('name') == 'oom_kills'][0]
    assert kill_case.find('failure') is not None
    assert suites['ghost'].find('testcase/error') is not None and suites['broken'].find('testcase/error') is not None
    assert len(suites[box['name']].findall('testcase')) == 8 and suites[box['name']].find('testcase/failure') is None
    assert markdown.startswith('# OOM report\n\n4 host(s): 2 ok, 1 failed, 1 unreachable.')


def test_gate_never_writes_the_same_files_and_fails_nothing(fleet):
    recap, out = run_report(fleet, 'never', oom_report_fail_on='never')
    report, junit, _markdown = load(out)
    assert report['fleet']['failing'] == [] and failing_lines(recap.output) == []
    assert recap.rc == 0, recap.output[-3000:]
    assert check(junit) == [] and ET.fromstring(junit).get('errors') == '2'  # unreachable stays an error


def test_reachable_only_fleet_passes_kills_gate_without_the_kill_host(fleet):
    recap, out = run_report(fleet, 'calm', oom_report_fail_on='kills', oom_report_fail_on_unreachable=False)
    report, _junit, _markdown = load(out)
    assert failing_lines(recap.output) == ['localhost'] and recap.rc == 2
    assert report['fleet']['failing'] == [by_inventory(report)['localhost']['name']]


@pytest.mark.parametrize('extra,fragment', [
    ({'oom_report_fail_on_kills': 'maybe'}, "oom_report_fail_on_kills must be true or false, got 'maybe'"),
    ({'oom_report_fail_on': 'critical'}, "oom_report_fail_on must be one of kills, high, medium, low, never"),
    ({'oom_report_fail_on_unreachable': 'perhaps'}, 'oom_report_fail_on_unreachable must be true or false'),
])
def test_bad_gate_values_stop_before_anything_runs(fleet, extra, fragment):
    recap, out = run_report(fleet, 'bad', **extra)
    assert recap.rc != 0 and fragment in recap.output
    assert 'Gather OOM facts' not in recap.output and not os.path.exists(out)


def test_deprecated_alias_still_works(fleet):
    recap, out = run_report(fleet, 'alias', oom_report_fail_on_kills=False)
    assert recap.rc == 0 and load(out)[0]['fail_on'] == 'never'
    assert 'oom_report_fail_on_kills is deprecated' in recap.output


def test_merge_of_two_slices(fleet):
    first, one = run_report(fleet, 'slice1', oom_report_fail_on='never')
    assert first.rc == 0
    merged = os.path.join(fleet['tmp'], 'merged')
    env = ansible_env()
    recap = run_playbook(['-i', 'localhost,', '-c', 'local', MERGE], False, False,
                         {'oom_report_merge': [one, os.path.join(fleet['tmp'], 'kills', 'report.json')],
                          'oom_report_dir': merged}, env)
    assert recap.rc == 2, recap.output[-3000:]
    report, junit, _markdown = load(merged)
    assert len(report['hosts']) == 4 and report['fail_on'] == 'kills' and len(report['fleet']['failing']) == 3
    assert check(junit) == []


def test_check_mode_writes_no_file_and_the_recap_shows_no_change(fleet):
    out = os.path.join(fleet['tmp'], 'check')
    recap = run_playbook(['-i', 'localhost,', '-c', 'local', PLAYBOOK], True, False,
                         {'oom_report_dir': out, 'oom_report_fail_on': 'never'}, ansible_env())
    assert recap.rc == 0 and recap.changed == 0, recap.output[-3000:]
    assert not os.path.exists(out)
    plain = run_playbook(['-i', 'localhost,', '-c', 'local', PLAYBOOK], False, False,
                         {'oom_report_dir': out, 'oom_report_fail_on': 'never'}, ansible_env())
    assert plain.rc == 0 and plain.changed == 0 and os.path.isfile(os.path.join(out, 'junit.xml'))
