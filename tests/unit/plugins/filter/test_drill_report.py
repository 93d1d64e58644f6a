"""The drill report filters: the verdict folded from the checks and the oom_facts events, and the
Markdown and JUnit shapes (the JUnit parsed back as XML)."""
import xml.etree.ElementTree as ET

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.oomguard.memory.plugins.filter import drill_report as f

DRILL = {'status': 'passed', 'msg': 'drill passed', 'cgroup': '/oomguard-drill-1', 'backend': 'cgroup_v1',
         'limit_bytes': 64 * 1024 * 1024, 'started_at': '2026-11-30T00:00:00Z',
         'checks': [{'name': 'hog_oom_killed_in_limit', 'passed': True, 'detail': 'ok'}],
         'before': {'mem_available_kb': 2048, 'swap_total_kb': 0}, 'after': {'mem_available_kb': 2048}}
EVENT = {'oom_memcg': '/oomguard-drill-1', 'task_memcg': '/oomguard-drill-1', 'source': 'kmsg:1',
         'victim': {'name': 'python3', 'pid': 42}}


def test_passes_when_oom_facts_saw_the_kill_in_the_drill_cgroup():
    report = f.drill_report(DRILL, {'events': [EVENT]}, 'web1', 'canary')
    assert report['status'] == 'passed'
    assert [c['name'] for c in report['checks']] == ['canary', 'hog_oom_killed_in_limit', 'oom_facts_reported']


@pytest.mark.parametrize('oom', [None, {'events': []}, {'events': [dict(EVENT, oom_memcg='/other')]},
                                 {'events': [dict(EVENT, victim=None)]}])
def test_fails_when_oom_facts_did_not_report_it(oom):
    report = f.drill_report(DRILL, oom, 'web1')
    assert report['status'] == 'failed' and 'oom_facts_reported' in report['msg']


def test_a_refused_drill_stays_refused():
    refused = {'status': 'refused', 'msg': 'drill refused: x', 'checks': [
        {'name': 'preflight', 'passed': False, 'detail': 'unit redis.service is not protected'}]}
    report = f.drill_report(refused, None, 'web1')
    assert report['status'] == 'refused' and report['msg'] == 'drill refused: x'
    junit = ET.fromstring(f.drill_report_junit(report))
    assert junit.get('failures') == '1'
    assert junit.find('testsuite/testcase/failure').get('message') == 'unit redis.service is not protected'


def test_markdown_and_junit_shapes():
    report = f.drill_report(DRILL, {'events': [EVENT]}, 'web1', 'canary')
    text = f.drill_report_markdown([report, dict(report, host='web2')])
    assert '## web1: PASSED' in text and '## web2: PASSED' in text
    assert '| oom_facts_reported | pass | killed python3 (pid 42) in oom_memcg=/oomguard-drill-1' in text
    junit = ET.fromstring(f.drill_report_junit(report))
    assert junit.get('tests') == '3' and junit.get('failures') == '0'


def test_bad_input():
    with pytest.raises(AnsibleFilterError):
        f.drill_report({'nothing': 1})
    with pytest.raises(AnsibleFilterError):
        f.drill_report_markdown('text')
