"""The OOM fire drill on cgroup v2 with systemd as PID 1, for real: the VM testbed
(tests/testbed/vm.sh, Debian 12 under qemu TCG). The hog runs in a transient scope with
MemoryMax=, the kernel OOM-kills it there, journald has the report that oom_facts reads back with
the scope's cgroup, and the scope is gone afterwards. The critical service is a transient unit
with OOMScoreAdjust=-900 (negative values work in the VM); a second one at 0 makes the drill
refuse. Each Ansible task costs seconds under emulation, so this file keeps to three runs.
"""
import json
import uuid

import pytest

PLAYBOOK = 'playbooks/drill.yml'


@pytest.fixture
def units(vm):
    """Transient services in the VM: name -> oom_score_adj; stopped at the end."""
    made = []

    def start(adj):
        name = 'ogd-%s.service' % uuid.uuid4().hex[:8]
        rc, out = vm.exec(['systemd-run', '--unit=%s' % name, '-p', 'OOMScoreAdjust=%d' % adj, 'sleep', '900'])
        assert rc == 0, out
        made.append(name)
        rc, out = vm.exec(['systemctl', 'show', '-p', 'MainPID', '--value', name])
        return name, int(out.strip())
    try:
        yield start
    finally:
        for name in made:
            vm.exec(['systemctl', 'stop', name])


def vm_state(vm):
    """What the drill must leave as it found: oomguard scopes loaded, cgroups, oom_kill count."""
    rc, out = vm.exec(['sh', '-c', 'systemctl list-units --all --no-legend "oomguard-drill-*"; '
                       'ls -d /sys/fs/cgroup/system.slice/oomguard-drill-* 2>/dev/null; '
                       'grep oom_kill /proc/vmstat'])
    lines = out.splitlines()
    return [l for l in lines if 'oomguard-drill' in l], int(next(l for l in lines if l.startswith('oom_kill')).split()[1])


def run(vm, tmp_path, critical, check=False):
    reports = tmp_path / 'reports'
    recap = vm.playbook(PLAYBOOK, check=check, extra_vars={
        'drill_canary_group': 'vm', 'drill_critical': [{'unit': u} for u in critical],
        'drill_report_dir': str(reports)})
    path = reports / ('%s.json' % vm.name)
    return recap, json.loads(path.read_text()) if path.exists() else None


@pytest.mark.slow
def test_drill_passes_in_a_systemd_scope_on_cgroup_v2(vm, units, tmp_path):
    name, pid = units(-900)
    left, kills = vm_state(vm)
    assert left == []
    recap, report = run(vm, tmp_path, [name])
    assert recap.rc == 0, recap.output[-3000:]
    assert report['status'] == 'passed' and report['backend'] == 'systemd_scope'
    assert report['cgroup'].startswith('/system.slice/oomguard-drill-') and report['cgroup'].endswith('.scope')
    checks = dict((c['name'], c) for c in report['checks'])
    assert 'oom_memcg=%s' % report['cgroup'] in checks['oom_facts_reported']['detail']
    assert 'journal' in checks['oom_facts_reported']['detail']
    # The VM's own view: one more OOM kill, no scope or cgroup left, the critical unit's pid unchanged.
    left_after, kills_after = vm_state(vm)
    assert left_after == [] and kills_after >= kills + 1
    rc, out = vm.exec(['systemctl', 'show', '-p', 'MainPID', '--value', name])
    assert int(out.strip()) == pid


@pytest.mark.slow
def test_drill_refuses_an_unprotected_critical_unit_in_the_vm(vm, units, tmp_path):
    protected, _pid = units(-900)
    exposed, pid = units(0)
    _left, kills = vm_state(vm)
    recap, report = run(vm, tmp_path, [protected, exposed])
    assert recap.rc != 0
    assert report['status'] == 'refused'
    assert 'unit %s is not protected: oom_score_adj 0 for pid %d' % (exposed, pid) in report['msg']
    assert vm_state(vm) == ([], kills)


@pytest.mark.slow
def test_check_mode_in_the_vm_changes_nothing(vm, units, tmp_path):
    name, _pid = units(-900)
    before = vm_state(vm)
    recap, report = run(vm, tmp_path, [name], check=True)
    assert recap.rc == 0, recap.output[-3000:]
    assert 'would run the drill in systemd scope' in recap.output
    assert report is None and vm_state(vm) == before
