"""The fleet report: the gate, host entries, report.json/report.md/junit.xml, merging."""
import json
import os
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.oomguard.memory.plugins.plugin_utils import report as rep
from junit_schema import check


def facts(kills=0, victim='java'):
    events = [{'time': '2026-11-30T00:00:0%dZ' % i, 'kind': 'memcg', 'oom_memcg': '/app', 'source': 'kmsg:%d' % i,
               'victim': {'name': victim, 'pid': 100 + i, 'anon_rss_kb': 65536, 'uid': 0},
               'trigger': {'name': victim, 'pid': 100 + i, 'gfp_mask': '0xcc0'}} for i in range(kills)]
    return {'changed': False, 'ansible_facts': {'oom': {
        'summary': {'events': kills, 'kills': kills, 'first': None, 'last': None,
                    'by_victim': {victim: kills} if kills else {}, 'by_memcg': {}},
        'events': events, 'counters': {'vmstat_oom_kill': kills, 'memcg': []},
        'memory': {'mem_total_kb': 1}, 'pressure': None, 'top_processes': []}}}


def finding(fid, check_id, severity):
    return {'id': fid, 'check': check_id, 'severity': severity, 'subject': 's', 'message': '%s <found> & "x"' % fid,
            'evidence': {}, 'fix': {'role': 'oomguard.memory.swap', 'variable': 'swap_size', 'text': 'do it'}}


def audit(*findings):
    checks = ['oom_kills', 'swap', 'critical_processes', 'unit_limits', 'container_limits', 'sysctl_overrides',
              'memory_pressure', 'overcommit']
    result = {'changed': False, 'findings': list(findings), 'summary': {
        'high': sum(1 for f in findings if f['severity'] == 'high'),
        'medium': sum(1 for f in findings if f['severity'] == 'medium'),
        'low': sum(1 for f in findings if f['severity'] == 'low'), 'findings': len(findings)}}
    result['checks'] = [{'id': c, 'status': 'skipped' if c == 'unit_limits' else
                         ('findings' if any(f['check'] == c for f in findings) else 'ok'),
                         'reason': 'no systemd' if c == 'unit_limits' else None} for c in checks]
    return result


def fleet():
    return [
        rep.host_entry('clean', facts(), audit()),
        rep.host_entry('killer', facts(2), audit(finding('oom_kills', 'oom_kills', 'high'),
                                                 finding('swap_missing', 'swap', 'medium'))),
        rep.host_entry('risky', facts(), audit(finding('swap_full', 'swap', 'high'),
                                               finding('critical_unprotected', 'critical_processes', 'medium'),
                                               finding('overcommit_always', 'overcommit', 'low'))),
        rep.host_entry('ghost', {'unreachable': True, 'msg': 'Failed to connect to the host via ssh'}, None),
        rep.host_entry('broken', None, None, {'task': 'Gather OOM facts', 'msg': 'cannot read /dev/kmsg'}),
    ]


@pytest.mark.parametrize('fail_on,fail_on_kills,expected', [
    (None, None, 'kills'), ('', None, 'kills'), ('HIGH', None, 'high'), ('never', None, 'never'),
    (None, True, 'kills'), (None, 'false', 'never'), (None, 'yes', 'kills'), ('medium', 'true', 'medium'),
    ('never', False, 'never'),
])
def test_gate_levels(fail_on, fail_on_kills, expected):
    level, note = rep.gate_level(fail_on, fail_on_kills)
    assert level == expected
    assert (note is not None) == (fail_on_kills is not None)


@pytest.mark.parametrize('fail_on,fail_on_kills,fragment', [
    (None, 'maybe', "oom_report_fail_on_kills must be true or false, got 'maybe'"),
    (None, 2, 'oom_report_fail_on_kills must be true or false'),
    (None, [], 'oom_report_fail_on_kills must be true or false'),
    ('critical', None, "oom_report_fail_on must be one of kills, high, medium, low, never, got 'critical'"),
    (True, None, 'oom_report_fail_on must be one of'),
    ('never', True, 'disagree'),
    ('kills', 'no', 'disagree'),
])
def test_bad_gate_values_are_errors(fail_on, fail_on_kills, fragment):
    with pytest.raises(rep.GateError) as caught:
        rep.gate_level(fail_on, fail_on_kills)
    assert fragment in str(caught.value)


def test_host_statuses():
    entries = dict((e['name'], e) for e in fleet())
    assert entries['clean']['status'] == 'ok' and entries['clean']['error'] is None
    assert entries['ghost']['status'] == 'unreachable' and 'Failed to connect' in entries['ghost']['error']
    assert entries['broken']['status'] == 'failed' and entries['broken']['error'] == 'Gather OOM facts: cannot read /dev/kmsg'
    assert rep.host_entry('half', facts(), None)['status'] == 'failed'
    assert rep.host_entry('half', facts(), {'failed': True, 'msg': 'x'})['error'] == 'the memory audit did not run on this host'
    assert len(entries['killer']['oom']['events']) == 2 and 'gfp_mask' not in entries['killer']['oom']['events'][0]['trigger']


@pytest.mark.parametrize('level,failing', [
    ('never', []),
    ('kills', ['broken', 'ghost', 'killer']),
    ('high', ['broken', 'ghost', 'killer', 'risky']),
    ('medium', ['broken', 'ghost', 'killer', 'risky']),
    ('low', ['broken', 'ghost', 'killer', 'risky']),
])
def test_gate_fails_exactly_the_hosts_it_should(level, failing):
    report = rep.build_report(fleet(), level)
    assert report['fleet']['failing'] == failing
    assert report['fleet']['hosts'] == 5 and report['fleet']['unreachable'] == 1 and report['fleet']['failed'] == 1
    assert report['fleet']['kills'] == 2 and report['fleet']['hosts_with_kills'] == 1


def test_gate_reasons_by_severity_and_unreachable_toggle():
    risky = dict((e['name'], e) for e in fleet())['risky']
    assert [r.split(':')[0] for r in rep.gate_reasons(risky, 'high')] == ['high']
    assert [r.split(':')[0] for r in rep.gate_reasons(risky, 'medium')] == ['high', 'medium']
    assert len(rep.gate_reasons(risky, 'low')) == 3
    report = rep.build_report(fleet(), 'kills', fail_on_unreachable=False)
    assert report['fleet']['failing'] == ['killer']


def test_report_json_schema_and_one_entry_per_host():
    data = json.loads(rep.render_json(rep.build_report(fleet(), 'kills', since='24h')))
    assert data['schema'] == 'oomguard.memory.oom_report' and data['schema_version'] == 1 and data['since'] == '24h'
    assert [h['name'] for h in data['hosts']] == ['broken', 'clean', 'ghost', 'killer', 'risky']
    assert set(data['hosts'][0]) >= {'name', 'status', 'error', 'oom', 'audit', 'gate'}


def test_markdown_starts_with_the_fleet_summary_then_failing_hosts_first():
    text = rep.render_markdown(rep.build_report(fleet(), 'high'))
    lines = text.splitlines()
    assert lines[0] == '# OOM report'
    assert lines[2].startswith('5 host(s): 3 ok, 1 failed, 1 unreachable. 1 host(s) with OOM kills (2 kills).')
    assert 'Gate `high`: 4 host(s) fail.' in lines[2]
    sections = [line[3:] for line in lines if line.startswith('## ')]
    assert sections[-1] == 'clean' and set(sections[:4]) == {'broken', 'ghost', 'killer', 'risky'}
    assert '| java | 100 | 64 MiB | /app | java |' in text
    assert '**unreachable**: Failed to connect to the host via ssh' in text
    assert '<found>' not in text and '&lt;found>' in text


def junit(level, entries=None):
    text = rep.render_junit(rep.build_report(entries or fleet(), level))
    assert check(text) == []
    return text, ET.fromstring(text)


def outcomes(root):
    found = {}
    for suite in root.findall('testsuite'):
        for case in suite.findall('testcase'):
            kinds = [c.tag for c in case if c.tag in ('failure', 'error', 'skipped')]
            found[(suite.get('name'), case.get('name'))] = kinds[0] if kinds else 'pass'
    return found


def test_junit_suite_per_host_case_per_check_and_failures_by_gate():
    _text, root = junit('high')
    got = outcomes(root)
    assert [s.get('name') for s in root.findall('testsuite')] == ['broken', 'clean', 'ghost', 'killer', 'risky']
    assert got[('ghost', 'connection')] == 'error' and got[('broken', 'gather')] == 'error'
    assert got[('killer', 'oom_kills')] == 'failure' and got[('killer', 'swap')] == 'pass'  # medium under gate high
    assert got[('risky', 'swap')] == 'failure' and got[('risky', 'critical_processes')] == 'pass'
    assert got[('clean', 'unit_limits')] == 'skipped' and got[('clean', 'oom_kills')] == 'pass'
    assert len([k for k in got if k[0] == 'clean']) == 8
    assert root.get('failures') == '2' and root.get('errors') == '2'
    _text, root = junit('medium')
    assert outcomes(root)[('killer', 'swap')] == 'failure' and outcomes(root)[('risky', 'overcommit')] == 'pass'
    _text, root = junit('never')
    assert set(v for k, v in outcomes(root).items() if k[0] not in ('ghost', 'broken')) <= {'pass', 'skipped'}
    assert root.get('errors') == '2'  # unreachable stays an error whatever the gate


def test_junit_survives_hostile_names_and_control_characters():
    entry = rep.host_entry('<web&1>"', facts(1, victim='a\x01b<c>'), audit(finding('swap_full', 'swap', 'high')))
    text, root = junit('kills', [entry])
    assert root.find('testsuite').get('name') == '<web&1>"'
    assert 'a?b<c>' in ''.join(root.itertext())


@pytest.mark.parametrize('broken,fragment', [
    ('<testsuite name="x" tests="0" failures="0" errors="0"/>', 'root element is <testsuite>'),
    ('<testsuites><testsuite name="x" tests="1" failures="0"><testcase name="a"/></testsuite></testsuites>',
     "required attribute 'errors' is missing"),
    ('<testsuites><testsuite name="x" tests="2" failures="0" errors="0"><testcase name="a"/></testsuite></testsuites>',
     'tests=2 but it holds 1'),
    ('<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><testcase name="a" status="x"/>'
     '</testsuite></testsuites>', "attribute 'status' is not in the schema"),
    ('<testsuites><testsuite name="x" tests="1" failures="2" errors="0"><testcase name="a"><failure/><failure/>'
     '</testcase></testsuite></testsuites>', 'more than one failure/error'),
    ('<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><testcase name="a"/><properties/>'
     '</testsuite></testsuites>', 'out of order'),
    ('<testsuites><testsuite name="x" tests="1" failures="0" errors="0" time="1s"><testcase name="a"/>'
     '</testsuite></testsuites>', 'SUREFIRE_TIME'),
    ('<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><testcase name="a"><failure><b/></failure>'
     '</testcase></testsuite></testsuites>', 'may hold only text'),
    ('<testsuites><testsuite', 'not well-formed'),
])
def test_the_schema_check_itself_rejects_what_the_schema_rejects(broken, fragment):
    problems = check(broken)
    assert problems and any(fragment in p for p in problems), problems


def test_merge_keeps_the_newest_entry_of_a_host_and_recomputes_the_gate():
    old = rep.build_report([rep.host_entry('a', facts(1), audit())], 'never', generated='2026-11-30T00:00:00Z')
    new = rep.build_report([rep.host_entry('a', facts(), audit())], 'never', generated='2026-11-30T01:00:00Z')
    other = rep.build_report([rep.host_entry('b', facts(3), audit())], 'never', generated='2026-11-30T00:30:00Z')
    merged = rep.merge_reports([new, old, other], 'kills', labels=['n', 'o', 'x'])
    assert [h['name'] for h in merged['hosts']] == ['a', 'b']
    assert merged['fleet']['kills'] == 3 and merged['fleet']['failing'] == ['b'] and merged['sources'] == ['n', 'o', 'x']


def test_write_and_load_round_trip_and_errors(tmp_path):
    report = rep.build_report(fleet(), 'kills')
    paths = rep.write_files(str(tmp_path / 'out' / 'deep'), report)
    assert [os.path.basename(p) for p in paths] == list(rep.FILES)
    assert rep.load_report(paths[0])['fleet'] == report['fleet']
    (tmp_path / 'file').write_text('x')
    with pytest.raises(rep.ReportError) as caught:
        rep.write_files(str(tmp_path / 'file'), report)
    assert 'exists and is not a directory' in str(caught.value)
    with pytest.raises(rep.ReportError) as caught:
        rep.load_report(str(tmp_path / 'file'))
    assert 'is not JSON' in str(caught.value)
    (tmp_path / 'other.json').write_text('{"hosts": []}')
    with pytest.raises(rep.ReportError) as caught:
        rep.load_report(str(tmp_path / 'other.json'))
    assert 'no schema oomguard.memory.oom_report' in str(caught.value)
    (tmp_path / 'future.json').write_text(json.dumps({'schema': rep.SCHEMA, 'schema_version': 99, 'hosts': []}))
    with pytest.raises(rep.ReportError) as caught:
        rep.load_report(str(tmp_path / 'future.json'))
    assert 'schema_version 99' in str(caught.value)
