# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report of playbooks/oom_report.yml: one host entry per host, the gate, and the three
renderings (report.json, report.md, junit.xml). Runs on the controller, standard library only.

Private to the oomguard.memory collection: no compatibility promise to other code.

Map of this file:
- ``gate_level(fail_on, fail_on_kills)``: the validated gate (kills, high, medium, low, never);
  ``GateError`` with one sentence for anything else.
- ``host_entry(name, facts_result, audit_result, error)``: one host, from what the play
  registered (an unreachable result, a failed task, or the two module results).
- ``build_report(entries, ...)`` adds the fleet summary and the gate verdict per host;
  ``merge_reports([report, ...])`` joins reports of job slices or ansible-pull hosts.
- ``render_json``, ``render_markdown``, ``render_junit``: text out; ``write_files`` writes all three
  atomically into one directory.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime
import json
import os
import re
import tempfile
from xml.sax.saxutils import escape, quoteattr

SCHEMA = 'oomguard.memory.oom_report'
SCHEMA_VERSION = 1
GATES = ('kills', 'high', 'medium', 'low', 'never')
SEVERITY_RANK = {'high': 3, 'medium': 2, 'low': 1}
# What each gate fails on, besides kills: findings at or above this rank (None: findings never fail).
GATE_RANK = {'kills': None, 'high': 3, 'medium': 2, 'low': 1, 'never': None}
FILES = ('report.json', 'report.md', 'junit.xml')
# Per host, report.json keeps the newest this many events; the summary counts all of them.
EVENTS_KEPT = 20
_CONTROL_RE = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]')
_TRUE = ('true', 'yes', 'on', '1')
_FALSE = ('false', 'no', 'off', '0')


class GateError(Exception):
    """A gate variable has a value that is not allowed; str() is the sentence."""


class ReportError(Exception):
    """A report file cannot be read, merged or written; str() is the sentence."""


def strict_bool(value, name):
    """A boolean from a real bool or its usual spellings (-e passes strings); anything else fails."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise GateError('%s must be true or false, got %r; the gate cannot guess, so nothing was gathered'
                    % (name, value))


def gate_level(fail_on=None, fail_on_kills=None, default='kills'):
    """(level, deprecation or None) from oom_report_fail_on and the deprecated oom_report_fail_on_kills."""
    note = None
    if fail_on_kills is not None:
        old = strict_bool(fail_on_kills, 'oom_report_fail_on_kills')
        note = ('oom_report_fail_on_kills is deprecated and will be removed in 1.0.0; use '
                'oom_report_fail_on=%s' % ('kills' if old else 'never'))
        if fail_on is None or (isinstance(fail_on, str) and not fail_on.strip()):
            return ('kills' if old else 'never'), note
    if fail_on is None or (isinstance(fail_on, str) and not fail_on.strip()):
        return default, note
    if isinstance(fail_on, bool) or not isinstance(fail_on, str) or fail_on.strip().lower() not in GATES:
        raise GateError('oom_report_fail_on must be one of %s, got %r; nothing was gathered'
                        % (', '.join(GATES), fail_on))
    level = fail_on.strip().lower()
    if fail_on_kills is not None and (level == 'never') == strict_bool(fail_on_kills, 'oom_report_fail_on_kills'):
        raise GateError('oom_report_fail_on=%s and the deprecated oom_report_fail_on_kills=%s disagree; '
                        'drop oom_report_fail_on_kills' % (level, fail_on_kills))
    return level, note


# ---- one host ---------------------------------------------------------------------------------

def _message_of(result):
    msg = result.get('msg') or result.get('message') or ''
    if isinstance(msg, (list, tuple)):
        msg = ' '.join(str(m) for m in msg)
    return ' '.join(str(msg).split()) or 'no message'


def _slim_event(event):
    victim = event.get('victim') or {}
    trigger = event.get('trigger') or {}
    return {'time': event.get('time'), 'kind': event.get('kind'), 'oom_memcg': event.get('oom_memcg'),
            'victim': ({'name': victim.get('name'), 'pid': victim.get('pid'), 'anon_rss_kb': victim.get('anon_rss_kb')}
                       if victim else None),
            'trigger': {'name': trigger.get('name'), 'pid': trigger.get('pid')} if trigger else None,
            'source': event.get('source')}


def host_entry(name, facts_result=None, audit_result=None, error=None):
    """The report.json entry of one host.

    facts_result: the registered result of oom_facts (or None when it did not run);
    audit_result: the registered result of memory_audit; error: {'task', 'msg'} of a failed task
    (from a rescue), or None. An unreachable result in either gives status 'unreachable'.
    """
    entry = {'name': name, 'status': 'ok', 'error': None, 'oom': None, 'audit': None}
    for result in (facts_result, audit_result):
        if isinstance(result, dict) and result.get('unreachable'):
            entry['status'] = 'unreachable'
            entry['error'] = _message_of(result)
            return entry
    if error:
        entry['status'] = 'failed'
        entry['error'] = '%s: %s' % (error.get('task') or 'a task', _message_of(error))
    elif not isinstance(facts_result, dict) or 'ansible_facts' not in facts_result:
        entry['status'] = 'failed'
        entry['error'] = 'no OOM facts were gathered on this host'
    if isinstance(facts_result, dict) and facts_result.get('ansible_facts', {}).get('oom'):
        oom = facts_result['ansible_facts']['oom']
        entry['oom'] = {'summary': oom.get('summary'),
                        'events': [_slim_event(e) for e in (oom.get('events') or [])[-EVENTS_KEPT:]],
                        'vmstat_oom_kill': (oom.get('counters') or {}).get('vmstat_oom_kill'),
                        'memory': oom.get('memory'), 'pressure': oom.get('pressure')}
    if isinstance(audit_result, dict) and 'findings' in audit_result and not audit_result.get('failed'):
        entry['audit'] = {'checks': audit_result.get('checks') or [], 'findings': audit_result.get('findings') or [],
                          'summary': audit_result.get('summary') or {}}
    elif entry['status'] == 'ok':
        entry['status'] = 'failed'
        entry['error'] = 'the memory audit did not run on this host'
    return entry


def kills_of(entry):
    oom = entry.get('oom') or {}
    return int(((oom.get('summary') or {}).get('kills')) or 0)


def gate_reasons(entry, level, fail_on_unreachable=True):
    """Why the gate fails this host: [] when it passes."""
    if level == 'never':
        return []
    if entry['status'] != 'ok':
        return ['%s: %s' % (entry['status'], entry['error'])] if fail_on_unreachable else []
    reasons = []
    kills = kills_of(entry)
    if kills:
        by_victim = (entry['oom']['summary'] or {}).get('by_victim') or {}
        reasons.append('%d OOM kill(s) (%s)' % (kills, ', '.join('%s x%d' % (k, v) for k, v in sorted(by_victim.items()))
                                                or 'names not logged'))
    rank = GATE_RANK[level]
    if rank is not None:
        for item in (entry.get('audit') or {}).get('findings') or []:
            if item['check'] != 'oom_kills' and SEVERITY_RANK.get(item['severity'], 0) >= rank:
                reasons.append('%s: %s' % (item['severity'], item['message']))
    return reasons


# ---- the fleet ----------------------------------------------------------------------------------

def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def build_report(entries, fail_on='kills', since=None, fail_on_unreachable=True, generated=None, sources=None):
    """The whole report.json document; entries are sorted by host name."""
    entries = sorted(entries, key=lambda e: e['name'])
    for entry in entries:
        entry['gate'] = gate_reasons(entry, fail_on, fail_on_unreachable)
    counts = {'high': 0, 'medium': 0, 'low': 0}
    for entry in entries:
        for item in (entry.get('audit') or {}).get('findings') or []:
            counts[item['severity']] = counts.get(item['severity'], 0) + 1
    fleet = {
        'hosts': len(entries),
        'ok': sum(1 for e in entries if e['status'] == 'ok'),
        'failed': sum(1 for e in entries if e['status'] == 'failed'),
        'unreachable': sum(1 for e in entries if e['status'] == 'unreachable'),
        'hosts_with_kills': sum(1 for e in entries if kills_of(e)),
        'kills': sum(kills_of(e) for e in entries),
        'findings': counts,
        'failing': [e['name'] for e in entries if e['gate']],
    }
    return {'schema': SCHEMA, 'schema_version': SCHEMA_VERSION, 'generated': generated or _now(),
            'since': since or None, 'fail_on': fail_on, 'fail_on_unreachable': fail_on_unreachable,
            'sources': sources or [], 'fleet': fleet, 'hosts': entries}


def load_report(path):
    """A report.json written by this collection (any compatible schema version)."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (IOError, OSError) as exc:
        raise ReportError('cannot read %s: %s' % (path, exc.strerror or exc))
    except ValueError as exc:
        raise ReportError('%s is not JSON (%s)' % (path, exc))
    if not isinstance(data, dict) or data.get('schema') != SCHEMA or not isinstance(data.get('hosts'), list):
        raise ReportError('%s is not a report.json of playbooks/oom_report.yml (no schema %s)' % (path, SCHEMA))
    if not isinstance(data.get('schema_version'), int) or data['schema_version'] > SCHEMA_VERSION:
        raise ReportError('%s has schema_version %r; this collection reads up to %d, upgrade it'
                          % (path, data.get('schema_version'), SCHEMA_VERSION))
    return data


def merge_reports(reports, fail_on='kills', fail_on_unreachable=True, labels=None):
    """One report of several (job slices, ansible-pull hosts). A host in more than one report
    keeps the entry of the newest report (by 'generated'), so a re-run slice replaces its older
    result."""
    by_host = {}
    since = set()
    labels = labels or [None] * len(reports)
    for report, label in sorted(zip(reports, labels), key=lambda pair: pair[0].get('generated') or ''):
        since.add(report.get('since'))
        for entry in report['hosts']:
            entry = dict(entry)
            entry.pop('gate', None)
            by_host[entry['name']] = entry
    window = since.pop() if len(since) == 1 else None
    return build_report(list(by_host.values()), fail_on, window, fail_on_unreachable,
                        sources=[label for label in labels if label])


def render_json(report):
    # compact: at 10,000 hosts indentation alone adds a third to the file
    return json.dumps(report, sort_keys=True, separators=(',', ':')) + '\n'


def _md(text):
    """Text safe inside a Markdown table cell or line."""
    return str(text).replace('\\', '\\\\').replace('|', '\\|').replace('\n', ' ').replace('<', '&lt;')


def render_markdown(report):
    fleet = report['fleet']
    lines = ['# OOM report', '',
             '%d host(s): %d ok, %d failed, %d unreachable. %d host(s) with OOM kills (%d kills)%s. '
             'Findings: %d high, %d medium, %d low. Gate `%s`: %s.'
             % (fleet['hosts'], fleet['ok'], fleet['failed'], fleet['unreachable'], fleet['hosts_with_kills'],
                fleet['kills'], (' since %s' % report['since']) if report.get('since') else '',
                fleet['findings']['high'], fleet['findings']['medium'], fleet['findings']['low'], report['fail_on'],
                ('%d host(s) fail' % len(fleet['failing'])) if fleet['failing'] else 'passes'),
             '', '| host | status | kills | high | medium | low | gate |', '|---|---|---:|---:|---:|---:|---|']
    ordered = sorted(report['hosts'], key=lambda e: (not e.get('gate'), e['status'] == 'ok', -kills_of(e), e['name']))
    for entry in ordered:
        summary = (entry.get('audit') or {}).get('summary') or {}
        lines.append('| %s | %s | %d | %s | %s | %s | %s |' % (
            _md(entry['name']), entry['status'], kills_of(entry), summary.get('high', '-'), summary.get('medium', '-'),
            summary.get('low', '-'), 'FAIL' if entry.get('gate') else 'pass'))
    for entry in ordered:
        lines += ['', '## %s' % _md(entry['name']), '']
        if entry['status'] != 'ok':
            lines.append('**%s**: %s' % (entry['status'], _md(entry['error'])))
            if not entry.get('oom') and not entry.get('audit'):
                continue
            lines.append('')
        oom = entry.get('oom') or {}
        summary = oom.get('summary') or {}
        if oom:
            lines.append('OOM killer: %s invocation(s), %s kill(s)%s; kernel counter since boot: %s.'
                         % (summary.get('events', 0), summary.get('kills', 0),
                            (' between %s and %s' % (summary['first'], summary['last'])) if summary.get('first') else '',
                            oom.get('vmstat_oom_kill') if oom.get('vmstat_oom_kill') is not None else 'n/a'))
            events = [e for e in oom.get('events') or [] if e.get('victim')]
            if events:
                lines += ['', '| time | killed | pid | anon-rss | cgroup | trigger |', '|---|---|---:|---:|---|---|']
                for event in events[-10:]:
                    victim = event['victim']
                    lines.append('| %s | %s | %s | %s | %s | %s |' % (
                        _md(event.get('time') or '?'), _md(victim.get('name') or '?'), victim.get('pid') or '?',
                        ('%d MiB' % round(victim['anon_rss_kb'] / 1024.0)) if victim.get('anon_rss_kb') is not None else '?',
                        _md(event.get('oom_memcg') or '-'), _md((event.get('trigger') or {}).get('name') or '-')))
        findings = (entry.get('audit') or {}).get('findings') or []
        if findings:
            lines += ['', '| severity | finding | fix |', '|---|---|---|']
            for item in findings:
                how = item.get('fix') or {}
                where = ' '.join(p for p in ('`%s`' % how['role'] if how.get('role') else '',
                                             '`%s`' % how['variable'] if how.get('variable') else '') if p)
                lines.append('| %s | %s (`%s`) | %s%s |' % (item['severity'], _md(item['message']), item['id'],
                                                            (where + ': ') if where else '', _md(how.get('text') or '')))
        elif entry.get('audit'):
            lines += ['', 'No findings.']
        if entry.get('gate'):
            lines += ['', 'Gate `%s` fails this host:' % report['fail_on'], '']
            lines += ['- %s' % _md(reason) for reason in entry['gate']]
    return '\n'.join(lines) + '\n'


def _attrs(pairs):
    return ''.join(' %s=%s' % (key, quoteattr(_CONTROL_RE.sub('?', str(value)))) for key, value in pairs)


def _xml_text(text):
    # XML 1.0 forbids most control characters even escaped; kernel text can carry them
    return escape(_CONTROL_RE.sub('?', str(text)))


def _case(classname, name, outcome=None, message='', kind='', body=''):
    head = '    <testcase%s' % _attrs((('name', name), ('classname', classname), ('time', '0.000')))
    if outcome is None:
        return head + '/>'
    result = _attrs((('message', message), ('type', kind)))
    return '%s>\n      <%s%s>%s</%s>\n    </testcase>' % (head, outcome, result, _xml_text(body), outcome)


def junit_cases(entry, level):
    """[(name, outcome, message, type, body)] for one host: one case per check; a failed or
    unreachable host is one erroring case."""
    if entry['status'] != 'ok':
        return [('connection' if entry['status'] == 'unreachable' else 'gather', 'error',
                 entry['error'], entry['status'], entry['error'])]
    rank = GATE_RANK[level]
    cases = []
    audit = entry.get('audit') or {}
    findings = audit.get('findings') or []
    checks = audit.get('checks') or []
    if not any(c['id'] == 'oom_kills' for c in checks):
        checks = [{'id': 'oom_kills', 'status': 'ok', 'reason': None}] + list(checks)
    for check in checks:
        mine = [f for f in findings if f['check'] == check['id']]
        if check['id'] == 'oom_kills':
            kills = kills_of(entry)
            failing = bool(kills) and level != 'never'
            text = '\n'.join(f['message'] for f in mine) or ('%d OOM kill(s)' % kills if kills else '')
        else:
            failing = rank is not None and any(SEVERITY_RANK.get(f['severity'], 0) >= rank for f in mine)
            text = '\n'.join('[%s] %s -- fix: %s' % (f['severity'], f['message'], (f.get('fix') or {}).get('text'))
                             for f in mine)
        if check.get('status') == 'skipped':
            cases.append((check['id'], 'skipped', check.get('reason') or 'skipped', 'skipped', ''))
        elif failing:
            worst = max((f['severity'] for f in mine), key=lambda s: SEVERITY_RANK.get(s, 0), default='high')
            cases.append((check['id'], 'failure', text.partition('\n')[0], worst, text))
        elif mine:
            cases.append((check['id'], None, '', '', text))
        else:
            cases.append((check['id'], None, '', '', ''))
    return cases


def render_junit(report):
    """junit.xml: a <testsuite> per host, a <testcase> per check (Jenkins junit-10.xsd and the Ant
    layout: properties first, then test cases, then system-out and system-err)."""
    level = report['fail_on']
    stamp = (report.get('generated') or _now()).rstrip('Z')[:19]
    suites = []
    totals = {'tests': 0, 'failures': 0, 'errors': 0}
    for index, entry in enumerate(report['hosts']):
        cases = junit_cases(entry, level)
        counts = {'tests': len(cases), 'failures': sum(1 for c in cases if c[1] == 'failure'),
                  'errors': sum(1 for c in cases if c[1] == 'error'),
                  'skipped': sum(1 for c in cases if c[1] == 'skipped')}
        for key in totals:
            totals[key] += counts[key]
        classname = 'oom_report.%s' % entry['name']
        body = ['  <testsuite%s>' % _attrs((
            ('name', entry['name']), ('tests', counts['tests']), ('failures', counts['failures']),
            ('errors', counts['errors']), ('skipped', counts['skipped']), ('time', '0.000'), ('timestamp', stamp),
            ('hostname', entry['name']), ('id', index), ('package', 'oom_report'))),
            '    <properties>',
            '      <property%s/>' % _attrs((('name', 'status'), ('value', entry['status']))),
            '      <property%s/>' % _attrs((('name', 'kills'), ('value', kills_of(entry)))),
            '      <property%s/>' % _attrs((('name', 'gate'), ('value', level))),
            '    </properties>']
        for name, outcome, message, kind, text in cases:
            if outcome == 'skipped':
                body.append('    <testcase%s>\n      <skipped%s/>\n    </testcase>' % (
                    _attrs((('name', name), ('classname', classname), ('time', '0.000'))),
                    _attrs((('message', message),))))
            elif outcome is None and text:
                body.append('    <testcase%s>\n      <system-out>%s</system-out>\n    </testcase>' % (
                    _attrs((('name', name), ('classname', classname), ('time', '0.000'))), _xml_text(text)))
            else:
                body.append(_case(classname, name, outcome, message, kind, text))
        body.append('    <system-out>%s</system-out>' % _xml_text('\n'.join(entry.get('gate') or [])))
        body.append('    <system-err></system-err>')
        body.append('  </testsuite>')
        suites.append('\n'.join(body))
    head = '<testsuites%s>' % _attrs((
        ('name', 'oomguard.memory oom_report'), ('tests', totals['tests']), ('failures', totals['failures']),
        ('errors', totals['errors']), ('time', '0.000')))
    return '\n'.join(['<?xml version="1.0" encoding="UTF-8"?>', head] + suites + ['</testsuites>']) + '\n'


def _atomic(path, text):
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_files(directory, report):
    """Write report.json, report.md and junit.xml into ``directory`` (created when missing);
    return their paths."""
    try:
        if os.path.lexists(directory) and not os.path.isdir(directory):
            raise ReportError('oom_report_dir %s exists and is not a directory; name a directory' % directory)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        paths = []
        # one rendering at a time: at 10,000 hosts the three texts together are 100 MiB
        for name, render in zip(FILES, (render_json, render_markdown, render_junit)):
            path = os.path.join(directory, name)
            _atomic(path, render(report))
            paths.append(path)
        return paths
    except (IOError, OSError) as exc:
        raise ReportError('cannot write the report into %s: %s' % (directory, exc.strerror or exc))
