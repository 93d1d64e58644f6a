# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OOM drill's report: built from the oom_drill result and oom_facts, rendered as Markdown and
JUnit XML (JSON is the report itself, through to_nice_json).

Kept in this one file, apart from the oom_report renderers, so both can be unified later.
``drill_report`` folds the checks into one verdict; the renderers only format.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from xml.sax.saxutils import escape, quoteattr

from ansible.errors import AnsibleFilterError

MIB = 1024.0


def _kb(value):
    return '?' if value is None else '%.1f MiB' % (value / MIB)


def _oom_facts_check(drill, oom):
    """Whether oom_facts saw the drill's kill, with the drill's cgroup as the limit that was hit."""
    cgroup = drill.get('cgroup')
    if oom is None:
        return {'name': 'oom_facts_reported', 'passed': False, 'detail': 'oom_facts was not run'}
    events = [e for e in oom.get('events') or [] if cgroup and e.get('oom_memcg') == cgroup]
    killed = [e for e in events if e.get('victim')]
    if not killed:
        return {'name': 'oom_facts_reported', 'passed': False,
                'detail': 'no OOM kill with oom_memcg=%s among the %d event(s) oom_facts found'
                          % (cgroup, len(oom.get('events') or []))}
    event = killed[-1]
    victim = event['victim']
    return {'name': 'oom_facts_reported', 'passed': True,
            'detail': 'killed %s (pid %s) in oom_memcg=%s, task_memcg=%s [%s]'
                      % (victim.get('name'), victim.get('pid'), event.get('oom_memcg'), event.get('task_memcg'),
                         event.get('source'))}


def drill_report(drill, oom=None, host=None, canary_group=None):
    """One report dict: host, status, msg, checks (the drill's, plus oom_facts'), evidence.

    ``drill`` is the registered oom_drill result; ``oom`` is ansible_facts.oom gathered after it
    (None when it was not gathered). A refused drill stays refused; otherwise it passed only when
    every check passed."""
    if not isinstance(drill, dict) or 'status' not in drill:
        raise AnsibleFilterError('drill_report: expected the registered result of oomguard.memory.oom_drill')
    checks = list(drill.get('checks') or [])
    if canary_group:
        checks.insert(0, {'name': 'canary', 'passed': True,
                          'detail': '%s is in the canary group %s' % (host, canary_group)})
    status = drill['status']
    if status in ('passed', 'failed'):
        checks.append(_oom_facts_check(drill, oom))
        status = 'passed' if all(c['passed'] for c in checks) else 'failed'
    failed = [c for c in checks if not c['passed']]
    if status in ('passed', 'refused', 'planned'):
        msg = drill.get('msg')
    else:
        msg = 'drill failed: %s' % '; '.join('%s (%s)' % (c['name'], c['detail']) for c in failed)
    return {
        'host': host, 'status': status, 'msg': msg, 'backend': drill.get('backend'), 'cgroup': drill.get('cgroup'),
        'limit_bytes': drill.get('limit_bytes'), 'started_at': drill.get('started_at'), 'checks': checks,
        'hog': drill.get('hog') or {}, 'critical': drill.get('critical') or [],
        'before': drill.get('before'), 'after': drill.get('after'), 'actions': drill.get('actions') or [],
    }


def _reports(value):
    reports = value if isinstance(value, list) else [value]
    for report in reports:
        if not isinstance(report, dict) or 'checks' not in report:
            raise AnsibleFilterError('drill report renderers expect drill_report() results (or a list of them)')
    return reports


def drill_report_markdown(value):
    """Markdown: one section per host, a table of checks, memory before/after."""
    lines = ['# OOM drill report', '']
    for report in _reports(value):
        lines.append('## %s: %s' % (report.get('host') or 'host', report['status'].upper()))
        lines.append('')
        lines.append(report.get('msg') or '')
        lines.append('')
        if report.get('cgroup') or report.get('backend'):
            lines.append('- backend: %s, cgroup: `%s`, limit: %s, started: %s' % (
                report.get('backend'), report.get('cgroup'),
                _kb((report.get('limit_bytes') or 0) / 1024.0), report.get('started_at')))
        before, after = report.get('before') or {}, report.get('after') or {}
        if before:
            lines.append('- MemAvailable: %s before, %s after; swap %s total' % (
                _kb(before.get('mem_available_kb')), _kb(after.get('mem_available_kb')) if after else 'n/a',
                _kb(before.get('swap_total_kb'))))
        lines += ['', '| check | result | detail |', '|---|---|---|']
        for item in report['checks']:
            detail = str(item.get('detail', '')).replace('|', '\\|').replace('\n', ' ')
            lines.append('| %s | %s | %s |' % (item['name'], 'pass' if item['passed'] else '**FAIL**', detail))
        lines.append('')
    return '\n'.join(lines)


def drill_report_junit(value):
    """JUnit XML: one testsuite per host, one testcase per check; a refused drill is a failure too."""
    reports = _reports(value)
    total = sum(len(r['checks']) for r in reports)
    failures = sum(1 for r in reports for c in r['checks'] if not c['passed'])
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<testsuites name="oom-drill" tests="%d" failures="%d">' % (total, failures)]
    for report in reports:
        host = report.get('host') or 'host'
        failed = [c for c in report['checks'] if not c['passed']]
        suite = quoteattr('oom-drill.%s' % host)
        out.append('  <testsuite name=%s tests="%d" failures="%d">' % (suite, len(report['checks']), len(failed)))
        for item in report['checks']:
            out.append('    <testcase classname=%s name=%s>' % (quoteattr('oom-drill.%s' % host), quoteattr(item['name'])))
            if not item['passed']:
                out.append('      <failure message=%s>%s</failure>' % (quoteattr(str(item.get('detail', ''))),
                                                                       escape(str(item.get('detail', '')))))
            else:
                out.append('      <system-out>%s</system-out>' % escape(str(item.get('detail', ''))))
            out.append('    </testcase>')
        out.append('  </testsuite>')
    out.append('</testsuites>')
    return '\n'.join(out) + '\n'


class FilterModule(object):
    def filters(self):
        return {
            'drill_report': drill_report,
            'drill_report_markdown': drill_report_markdown,
            'drill_report_junit': drill_report_junit,
        }
