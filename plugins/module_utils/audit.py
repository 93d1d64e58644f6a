# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The memory risk audit behind oomguard.memory.memory_audit: which hosts are one leak away from
the next OOM kill, and which setting of this collection fixes it.

Private to the oomguard.memory collection: no compatibility promise to other code.

Map of this file:
- ``CHECKS``: the check ids, in the order they run and are reported.
- ``finding()``: the one shape of a finding (id, check, severity, subject, message, evidence, fix).
- ``evaluate_<check>(...)``: pure functions, data in, findings out (unit-tested with plain dicts).
- ``Audit``: reads the host (procfs, sysctl, cgroup readers under an injectable ``root``; external
  commands only through the injected ``run_command``) and runs the evaluators. A check that
  cannot run on this host is ``skipped`` with the reason, never an error.
The OOM kills come from ``oom_sources.collect_events``/``summarize`` (the parser of oom_facts),
or from an ``oom_summary`` an earlier oom_facts run already produced on the host.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re

from ansible_collections.oomguard.memory.plugins.module_utils import cgroups, procfs, sysctl
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError

CHECKS = ('oom_kills', 'swap', 'critical_processes', 'unit_limits', 'container_limits', 'sysctl_overrides',
          'memory_pressure', 'overcommit')
SEVERITIES = ('high', 'medium', 'low')
SEVERITY_RANK = {'high': 3, 'medium': 2, 'low': 1}
# The sysctls this collection manages or explains; the user may extend the list.
MANAGED_SYSCTLS = ('vm.swappiness', 'vm.overcommit_memory', 'vm.overcommit_ratio', 'vm.panic_on_oom',
                   'vm.oom_kill_allocating_task', 'vm.min_free_kbytes')
DEFAULT_THRESHOLDS = {'commit_percent': 90.0, 'swap_full_percent': 90.0, 'pressure_full_avg60': 10.0,
                      'unit_percent': 10.0}
# A file this collection writes carries this in its name (swappiness: 90-oomguard-swappiness.conf).
OWN_FILE_MARK = 'oomguard'
# How deep systemd nests service cgroups below the memory root (user.slice/user-1000.slice/user@1000.service).
UNIT_DEPTH = 4
_SYSCTL_RE = re.compile(r'^[A-Za-z0-9_-]+([./][A-Za-z0-9_-]+)+$')
KUBELET_MARKERS = ('/var/lib/kubelet/config.yaml', '/etc/kubernetes/kubelet.conf')


class AuditError(OomguardError):
    """An option of the audit is wrong; str() is the sentence."""


class Skip(Exception):
    """A check cannot run on this host; str() says why."""


def fix(text, role=None, variable=None):
    return {'role': role, 'variable': variable, 'text': text}


def finding(fid, check, severity, subject, message, evidence, how):
    if severity not in SEVERITY_RANK:
        raise ValueError('unknown severity %r' % severity)
    return {'id': fid, 'check': check, 'severity': severity, 'subject': subject, 'message': message,
            'evidence': evidence, 'fix': how}


def _mib(kb):
    return '%d MiB' % round((kb or 0) / 1024.0)


def _percent(part, whole):
    return round(100.0 * part / whole, 1) if whole else None


# ---- pure evaluators ------------------------------------------------------------------------

def evaluate_oom_kills(summary, since=None):
    """A high finding when the OOM killer killed anything in the window."""
    kills = int(summary.get('kills') or 0)
    if not kills:
        return []
    victims = summary.get('by_victim') or {}
    names = ', '.join('%s (%dx)' % (name, count) for name, count in
                      sorted(victims.items(), key=lambda item: (-item[1], item[0]))[:5])
    window = ('since %s' % since) if since else 'in the logs read'
    evidence = {'kills': kills, 'events': summary.get('events'), 'first': summary.get('first'),
                'last': summary.get('last'), 'by_victim': victims, 'by_memcg': summary.get('by_memcg') or {},
                'since': since}
    return [finding('oom_kills', 'oom_kills', 'high', 'kernel',
                    'the OOM killer killed %d process(es) %s: %s' % (kills, window, names or 'names not logged'),
                    evidence,
                    fix('give the service that grows its own ceiling so the kernel kills it alone, and add swap '
                        'as a buffer; see the events of oomguard.memory.oom_facts for who and which cgroup',
                        'oomguard.memory.memory_limits', 'memory_limits_units'))]


def evaluate_swap(meminfo, thresholds):
    """No swap while the commit charge is near CommitLimit, or swap nearly full."""
    total = meminfo.get('SwapTotal') or 0
    free = meminfo.get('SwapFree') or 0
    committed = meminfo.get('Committed_AS')
    limit = meminfo.get('CommitLimit')
    found = []
    if total == 0:
        share = _percent(committed or 0, limit)
        if share is not None and share >= thresholds['commit_percent']:
            found.append(finding(
                'swap_missing', 'swap', 'medium', 'swap',
                'no swap, and the memory committed (%s) is %s%% of the commit limit (%s): one more leak and the '
                'OOM killer runs, with nothing to page out first' % (_mib(committed), share, _mib(limit)),
                {'swap_total_kb': total, 'committed_as_kb': committed, 'commit_limit_kb': limit,
                 'commit_percent': share, 'mem_total_kb': meminfo.get('MemTotal'),
                 'mem_available_kb': meminfo.get('MemAvailable'), 'threshold_percent': thresholds['commit_percent']},
                fix('add a swap file sized from RAM', 'oomguard.memory.swap', 'swap_size')))
    else:
        used = _percent(total - free, total)
        if used >= thresholds['swap_full_percent']:
            found.append(finding(
                'swap_full', 'swap', 'high', 'swap',
                'swap is %s%% full (%s of %s used): the next allocation that cannot be paged out invokes the '
                'OOM killer' % (used, _mib(total - free), _mib(total)),
                {'swap_total_kb': total, 'swap_free_kb': free, 'used_percent': used,
                 'mem_available_kb': meminfo.get('MemAvailable'), 'threshold_percent': thresholds['swap_full_percent']},
                fix('enlarge the swap file, and limit the services that fill it',
                    'oomguard.memory.swap', 'swap_size')))
    return found


def evaluate_critical_processes(processes, names):
    """Critical processes (by name) that the OOM killer may pick like any other (oom_score_adj >= 0).

    processes: [{pid, name, oom_score_adj}]."""
    found = []
    for name in names:
        hits = [p for p in processes if p['name'] == name[:15] and p['oom_score_adj'] is not None
                and p['oom_score_adj'] >= 0]
        if not hits:
            continue
        pids = sorted(p['pid'] for p in hits)
        found.append(finding(
            'critical_unprotected', 'critical_processes', 'medium', name,
            '%s (pid %s) has oom_score_adj %d, so the OOM killer may pick it like any other process'
            % (name, ', '.join(str(p) for p in pids[:5]) + (' ...' if len(pids) > 5 else ''),
               max(p['oom_score_adj'] for p in hits)),
            {'pids': pids, 'oom_score_adj': sorted(set(p['oom_score_adj'] for p in hits))},
            fix('protect it with a negative oom_score_adj (the SSH daemon is protected by default)',
                'oomguard.memory.oom_protect', 'oom_protect_critical')))
    return found


def evaluate_unit_limits(units, mem_total_kb, top, thresholds):
    """The largest systemd services without MemoryMax=/MemoryHigh=, and memory.high >= memory.max.

    units: [{unit, path, usage, max, high, version}] (bytes; None for no limit)."""
    found = []
    ranked = sorted((u for u in units if u['unit'].endswith('.service') and u['usage'] is not None),
                    key=lambda u: (-u['usage'], u['unit']))
    for unit in ranked[:top]:
        if unit['max'] is not None or (unit['version'] == 'v2' and unit['high'] is not None):
            continue
        share = _percent(unit['usage'] / 1024.0, mem_total_kb)
        severity = 'medium' if share is not None and share >= thresholds['unit_percent'] else 'low'
        found.append(finding(
            'unit_unlimited', 'unit_limits', severity, unit['unit'],
            '%s uses %s%s and has no MemoryMax= or MemoryHigh=: when it leaks, the OOM killer chooses among '
            'all processes of the host' % (unit['unit'], _mib(unit['usage'] / 1024.0),
                                           (' (%s%% of RAM)' % share) if share is not None else ''),
            {'usage_bytes': unit['usage'], 'percent_of_ram': share, 'cgroup': unit['path']},
            fix('give it a memory ceiling', 'oomguard.memory.memory_limits', 'memory_limits_units')))
    for unit in units:
        if unit['version'] == 'v2' and unit['high'] is not None and unit['max'] is not None \
                and unit['high'] >= unit['max']:
            found.append(finding(
                'memory_high_not_below_max', 'unit_limits', 'low', unit['unit'],
                '%s has memory.high (%s) at or above memory.max (%s): the kernel never throttles it before the '
                'OOM kill' % (unit['unit'], _mib(unit['high'] / 1024.0), _mib(unit['max'] / 1024.0)),
                {'high_bytes': unit['high'], 'max_bytes': unit['max'], 'cgroup': unit['path']},
                fix('set high below max (for example 80% of it)', 'oomguard.memory.memory_limits',
                    'memory_limits_units')))
    return found


def evaluate_container_limits(runtime, containers):
    """Running containers of one runtime without a memory limit. containers: [{name, memory}] bytes."""
    unlimited = sorted(c['name'] for c in containers if not c['memory'])
    if not unlimited:
        return []
    return [finding(
        'container_unlimited', 'container_limits', 'medium', runtime,
        '%d running %s container(s) have no memory limit: %s'
        % (len(unlimited), runtime, ', '.join(unlimited[:10]) + (' ...' if len(unlimited) > 10 else '')),
        {'runtime': runtime, 'containers': unlimited, 'running': len(containers)},
        fix('start them with a memory limit (%s run --memory ...), or cap the slice they run in' % runtime,
            'oomguard.memory.memory_limits', 'memory_limits_units'))]


def _norm(value):
    return ' '.join(str(value).split()) if value is not None else None


def evaluate_sysctl_overrides(files, running, keys):
    """Managed sysctls that one sysctl.d file sets and a later one overrides, and running values that
    differ from what the boot applies.

    files: [(path, text)] in application order; running: {key: value now}."""
    found = []
    for key in keys:
        assignments = []
        for path, text in files:
            for found_key, value, line in sysctl.parse_sysctl_conf(text):
                if found_key == key:
                    assignments.append((path, value, line))
        if assignments:
            win_path, win_value, win_line = assignments[-1]
            losers = [(p, v, n) for p, v, n in assignments[:-1] if p != win_path and _norm(v) != _norm(win_value)]
            if losers:
                ours = any(OWN_FILE_MARK in os.path.basename(p) for p, _v, _n in losers)
                found.append(finding(
                    'sysctl_overridden', 'sysctl_overrides', 'medium' if ours else 'low', key,
                    '%s = %s in %s is overridden at boot by %s = %s in %s:%d'
                    % (key, losers[-1][1], losers[-1][0], key, win_value, win_path, win_line),
                    {'winner': {'path': win_path, 'line': win_line, 'value': win_value},
                     'overridden': [{'path': p, 'line': n, 'value': v} for p, v, n in losers],
                     'running': running.get(key)},
                    fix('remove %s from %s, or let the winning file carry the value you want'
                        % (key, win_path), 'oomguard.memory.swap' if key == 'vm.swappiness' else None,
                        'swap_swappiness' if key == 'vm.swappiness' else None)))
            now = running.get(key)
            if now is not None and _norm(now) != _norm(win_value):
                found.append(finding(
                    'sysctl_not_persistent', 'sysctl_overrides', 'low', key,
                    '%s is %s now but %s:%d sets %s at boot, so the next reboot changes it'
                    % (key, now, win_path, win_line, win_value),
                    {'running': now, 'boot': win_value, 'path': win_path, 'line': win_line},
                    fix('make the boot value match the one you want to keep',
                        'oomguard.memory.swap' if key == 'vm.swappiness' else None,
                        'swap_swappiness' if key == 'vm.swappiness' else None)))
    return found


def evaluate_memory_pressure(pressure, thresholds):
    """PSI memory 'full avg60' above the threshold: every task stalled on memory that share of the time."""
    full = (pressure or {}).get('full') or {}
    value = full.get('avg60')
    limit = thresholds['pressure_full_avg60']
    if value is None or value < limit:
        return []
    return [finding(
        'memory_pressure', 'memory_pressure', 'high' if value >= 2 * limit else 'medium', 'memory',
        'memory pressure: all non-idle tasks were stalled on memory %s%% of the last minute (full avg60; '
        'threshold %s%%)' % (value, limit),
        {'full': full, 'some': (pressure or {}).get('some'), 'threshold': limit},
        fix('find the growing service (oom_facts top_processes) and give it a ceiling; add swap as a buffer',
            'oomguard.memory.memory_limits', 'memory_limits_units'))]


def evaluate_overcommit(values, meminfo, host_role):
    """vm.overcommit_memory and vm.panic_on_oom with their consequence, and conflicts with the host's role."""
    found = []
    mode = values.get('vm.overcommit_memory')
    panic = values.get('vm.panic_on_oom')
    k8s = host_role == 'kubernetes'
    sysctl_fix = 'set it in a file under /etc/sysctl.d (for example with ansible.posix.sysctl); ' \
                 'this collection has no role for it'
    if panic in (1, 2):
        what = ('every OOM, even a memory cgroup hitting its own limit, panics the kernel' if panic == 2 else
                'a system-wide OOM panics the kernel instead of killing one process')
        found.append(finding(
            'panic_on_oom', 'overcommit', 'high' if (panic == 2 or k8s) else 'medium', 'vm.panic_on_oom',
            'vm.panic_on_oom=%d: %s, so the whole host goes down (or reboots, with kernel.panic)%s'
            % (panic, what, '; a Kubernetes node expects 0 so the kubelet can evict pods' if k8s else ''),
            {'vm.panic_on_oom': panic, 'host_role': host_role},
            fix('vm.panic_on_oom = 0 unless a failover cluster relies on the reboot; ' + sysctl_fix)))
    if k8s and mode is not None and mode != 1:
        found.append(finding(
            'overcommit_role_conflict', 'overcommit', 'medium', 'vm.overcommit_memory',
            'vm.overcommit_memory=%s on a Kubernetes node: the kubelet expects 1 (it sets it itself unless '
            '--protect-kernel-defaults is on, which then refuses to start)' % mode,
            {'vm.overcommit_memory': mode, 'host_role': host_role},
            fix('vm.overcommit_memory = 1 on Kubernetes nodes; ' + sysctl_fix)))
    elif mode == 2:
        found.append(finding(
            'overcommit_strict', 'overcommit', 'low', 'vm.overcommit_memory',
            'vm.overcommit_memory=2 (strict): allocations beyond the commit limit (%s, %s committed) fail with '
            'ENOMEM instead of invoking the OOM killer; programs that do not check malloc crash instead'
            % (_mib(meminfo.get('CommitLimit')), _mib(meminfo.get('Committed_AS'))),
            {'vm.overcommit_memory': mode, 'commit_limit_kb': meminfo.get('CommitLimit'),
             'committed_as_kb': meminfo.get('Committed_AS'), 'vm.overcommit_ratio': values.get('vm.overcommit_ratio')},
            fix('keep it if the applications expect it; otherwise 0 (heuristic); ' + sysctl_fix)))
    elif mode == 1 and not k8s:
        found.append(finding(
            'overcommit_always', 'overcommit', 'low', 'vm.overcommit_memory',
            'vm.overcommit_memory=1: the kernel never refuses an allocation, so the OOM killer is the only brake',
            {'vm.overcommit_memory': mode, 'host_role': host_role},
            fix('0 (heuristic) unless the workload needs it (Redis, Kubernetes nodes); ' + sysctl_fix)))
    return found


# ---- reading the host -----------------------------------------------------------------------

def process_rows(root, names):
    """[{pid, name, oom_score_adj}] of the user processes whose comm is in ``names``."""
    wanted = set(n[:15] for n in names)
    rows = []
    for pid in procfs.list_pids(root):
        try:
            stat = procfs.read_pid_stat(pid, root)
            if procfs.is_kernel_thread(stat) or stat['comm'] not in wanted:
                continue
            rows.append({'pid': pid, 'name': stat['comm'], 'oom_score_adj': procfs.read_pid_oom_score_adj(pid, root)})
        except procfs.ProcError:
            continue
    return rows


def unit_cgroups(layout):
    """[{unit, path, usage, max, high, version}] for the systemd unit cgroups (*.service, *.scope,
    *.slice) below the memory root, down to UNIT_DEPTH levels."""
    top = layout.get('memory_root')
    version = layout.get('memory_version')
    if not top or not os.path.isdir(top):
        return []
    units = []
    base_depth = top.rstrip('/').count('/')
    for directory, subdirs, _files in os.walk(top):
        depth = directory.rstrip('/').count('/') - base_depth
        subdirs[:] = sorted(d for d in subdirs if d.endswith(('.slice', '.service', '.scope'))) \
            if depth < UNIT_DEPTH else []
        name = os.path.basename(directory)
        if directory == top or not name.endswith(('.slice', '.service', '.scope')):
            continue
        try:
            limits = cgroups.read_limits(directory, version)
            usage = cgroups.read_usage(directory, version)
        except cgroups.CgroupError:
            continue
        units.append({'unit': name, 'path': '/' + os.path.relpath(directory, top), 'usage': usage,
                      'max': limits.get('max'), 'high': limits.get('high'), 'version': version})
    return units


def parse_inspect(text):
    """`docker|podman inspect --format '{{.Name}} {{.HostConfig.Memory}}'` lines to [{name, memory}]."""
    rows = []
    for line in text.splitlines():
        name, _sep, memory = line.strip().rpartition(' ')
        if not name:
            continue
        try:
            rows.append({'name': name.lstrip('/'), 'memory': int(memory)})
        except ValueError:
            continue
    return rows


class Audit(object):
    """One audit of one host. run_command(argv) -> (rc, out, err); which(name) -> path or None;
    collect_oom(since) -> summary dict (the oom_facts parser); warn(msg)."""

    def __init__(self, params, run_command, which, warn, collect_oom, root='/'):
        self.params, self.root = params, root
        # what the audit asks of the host, injected so tests can answer for it
        self.run_command, self.which, self.warn, self.collect_oom = run_command, which, warn, collect_oom
        self.thresholds = dict(DEFAULT_THRESHOLDS)
        for key, value in (params.get('thresholds') or {}).items():
            if value is not None:
                self.thresholds[key] = float(value)
        self._meminfo = None

    def meminfo(self):
        if self._meminfo is None:
            self._meminfo = procfs.read_meminfo(self.root)
        return self._meminfo

    def sysctl(self, name):
        return procfs.read_sysctl(name, self.root)

    def run(self):
        checks, findings = [], []
        for check in self.params.get('checks') or CHECKS:
            try:
                found = getattr(self, 'check_' + check)()
            except Skip as exc:
                checks.append({'id': check, 'status': 'skipped', 'reason': str(exc), 'findings': 0})
                continue
            except (procfs.ProcError, cgroups.CgroupError) as exc:
                checks.append({'id': check, 'status': 'skipped', 'reason': 'could not read the host: %s' % exc,
                               'findings': 0})
                self.warn('check %s skipped: %s' % (check, exc))
                continue
            findings.extend(found)
            checks.append({'id': check, 'status': 'findings' if found else 'ok', 'reason': None, 'findings': len(found)})
        findings.sort(key=lambda f: (-SEVERITY_RANK[f['severity']], CHECKS.index(f['check']), f['subject']))
        counts = dict((sev, sum(1 for f in findings if f['severity'] == sev)) for sev in SEVERITIES)
        worst = findings[0]['severity'] if findings else None
        return {'checks': checks, 'findings': findings, 'summary': dict(counts, worst=worst, findings=len(findings))}

    # one method per check id ------------------------------------------------------------------

    def check_oom_kills(self):
        summary = self.params.get('oom_summary')
        if summary is None:
            summary = self.collect_oom(self.params.get('since'))
        return evaluate_oom_kills(summary, self.params.get('since'))

    def check_swap(self):
        return evaluate_swap(self.meminfo(), self.thresholds)

    def check_critical_processes(self):
        names = self.params.get('critical_processes') or []
        if not names:
            raise Skip('no critical process names given')
        return evaluate_critical_processes(process_rows(self.root, names), names)

    def check_unit_limits(self):
        layout = procfs.detect_cgroup_layout(self.root)
        if not layout.get('memory_version'):
            raise Skip('no cgroup hierarchy with the memory controller is mounted')
        units = unit_cgroups(layout)
        if not units:
            raise Skip('no systemd unit cgroups in the memory hierarchy (systemd does not manage this host)')
        return evaluate_unit_limits(units, self.meminfo().get('MemTotal'), self.params.get('top_units', 5),
                                    self.thresholds)

    def check_container_limits(self):
        found, seen, silent = [], [], []
        for runtime in ('docker', 'podman'):
            binary = self.which(runtime)
            if not binary:
                continue
            rc, out, err = self.run_command([binary, 'ps', '-q', '--no-trunc'])
            if rc != 0:
                # a docker client without a running daemon is common and no risk: no warning
                silent.append('%s ps failed (rc=%s): %s' % (runtime, rc, (err or out).strip()[:200]))
                continue
            seen.append(runtime)
            ids = out.split()
            if not ids:
                continue
            rc, out, err = self.run_command([binary, 'inspect', '--format', '{{.Name}} {{.HostConfig.Memory}}'] + ids)
            if rc != 0:
                # a container that stopped between ps and inspect makes the whole call fail: say so, go on
                self.warn('%s inspect failed (rc=%s): %s' % (runtime, rc, (err or out).strip()[:200]))
                continue
            found.extend(evaluate_container_limits(runtime, parse_inspect(out)))
        if not seen:
            raise Skip('; '.join(silent) if silent else 'neither docker nor podman is installed on this host')
        return found

    def check_sysctl_overrides(self):
        keys = [sysctl.normalize_key(k) for k in self.params.get('sysctls') or MANAGED_SYSCTLS]
        files = sysctl.read_files(sysctl.config_files(self.root), self.root)
        running = {}
        for key in keys:
            value = self.sysctl(key)
            if value is not None:
                running[key] = value
        return evaluate_sysctl_overrides(files, running, keys)

    def check_memory_pressure(self):
        pressure = procfs.read_pressure(self.root, 'memory')
        if pressure is None:
            raise Skip('the kernel has no pressure stall information (CONFIG_PSI off, or psi=0)')
        return evaluate_memory_pressure(pressure, self.thresholds)

    def host_role(self):
        role = self.params.get('host_role') or 'auto'
        if role != 'auto':
            return role
        for marker in KUBELET_MARKERS:
            if os.path.exists(procfs.path_in(self.root, marker)):
                return 'kubernetes'
        return 'generic'

    def check_overcommit(self):
        values = dict((name, self.sysctl(name)) for name in
                      ('vm.overcommit_memory', 'vm.panic_on_oom', 'vm.overcommit_ratio'))
        return evaluate_overcommit(values, self.meminfo(), self.host_role())


def validate(params):
    """Check the options the argument spec cannot; AuditError with one sentence."""
    for name, value in (params.get('thresholds') or {}).items():
        if value is not None and not 0 <= float(value) <= 100:
            raise AuditError('thresholds.%s must be a percentage from 0 to 100, got %s' % (name, value))
    if params.get('top_units', 0) < 0:
        raise AuditError('top_units must be 0 or more, got %d' % params['top_units'])
    summary = params.get('oom_summary')
    if summary is not None:
        kills = summary.get('kills')
        if isinstance(kills, bool) or not isinstance(kills, int) or kills < 0:
            raise AuditError('oom_summary must be the summary of oomguard.memory.oom_facts '
                             '(ansible_facts.oom.summary) with a kills count, got %r' % (summary,))
    for key in params.get('sysctls') or []:
        if not _SYSCTL_RE.match(key or ''):
            raise AuditError('sysctls: %r is not a sysctl name such as vm.swappiness' % (key,))
    for name in params.get('critical_processes') or []:
        if not name or '/' in name or '\n' in name:
            raise AuditError('critical_processes: %r is not a process name (the comm, as in ps -o comm)' % (name,))
