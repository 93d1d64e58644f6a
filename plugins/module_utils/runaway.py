# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Choose a runaway process by rules a person can read, and stop it.

Private to the oomguard.memory collection: no compatibility promise to other code.

Map: ``Rules`` holds the selection and the refusal thresholds and says them in words
(``Rules.describe()``); ``snapshot(root)`` reads every user process once (rss, age,
oom_score_adj, systemd unit); ``evaluate(rows, rules, own)`` returns every matching process,
largest RSS first, each with the verdict ``chosen``/``eligible``/``refused`` and the one reason.
``stop_process`` sends SIGTERM, waits ``grace`` seconds, then SIGKILL; ``stop_unit`` does the same
through systemctl (or restarts the unit). Everything that reads /proc takes ``root`` so unit tests
use a fake tree; signals and systemctl are injected callables.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import signal
import time

from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.procfs import (
    ProcError, ProcessGone, _read, read_pid_cgroup, read_pid_cmdline, read_pid_oom_score_adj, read_pid_status,
    read_uptime)
from ansible_collections.oomguard.memory.plugins.module_utils.processes import (
    TargetError, compile_pattern, process_table)
from ansible_collections.oomguard.memory.plugins.module_utils.sizes import format_size

CLOCK_TICKS = os.sysconf('SC_CLK_TCK') if hasattr(os, 'sysconf') else 100
# The SSH daemon's process names: the listener (sshd) and, from OpenSSH 9.8, sshd-session and
# sshd-auth (comm is cut at 15 characters).
SSH_NAMES = ('sshd', 'sshd-session', 'sshd-auth')
SSH_UNITS = ('ssh.service', 'sshd.service', 'ssh.socket', 'sshd.socket')
# Unit types whose processes systemctl can kill or restart as a whole. Scopes (login sessions,
# containers started by hand) are signalled per process: killing a session scope would end the
# operator's login.
SERVICE_SUFFIX = '.service'
UNIT_SUFFIXES = ('.service', '.scope')


class RunawayError(OomguardError):
    """A request or a host state we refuse to act on; str() is the sentence for the user."""


def unit_of(entries):
    """The systemd unit (.service or .scope) a process belongs to, from /proc/<pid>/cgroup
    entries: the innermost such component of the name=systemd path (v1/hybrid) or the v2 path."""
    path = None
    for entry in entries:
        if 'name=systemd' in entry['controllers']:
            path = entry['path']
            break
    if path is None:
        path = next((entry['path'] for entry in entries if entry['id'] == 0), None)
    if not path:
        return None
    for part in reversed(path.split('/')):
        if part.endswith(UNIT_SUFFIXES):
            return part
    return None


def snapshot(root='/', pids=None):
    """{pid: row} for the user processes (kernel threads carry kernel=True and nothing else).

    A row: pid, ppid, name (comm), state, kernel, rss_kb, age_s, oom_score_adj, unit, cmdline.
    Processes that exit meanwhile are left out."""
    table = process_table(root)
    uptime = read_uptime(root)
    rows = {}
    for pid, stat in table.items():
        if pids is not None and pid not in pids:
            continue
        row = {'pid': pid, 'ppid': stat['ppid'], 'name': stat['comm'], 'state': stat['state'],
               'kernel': stat['kernel'], 'starttime': stat['starttime'],
               'age_s': max(0, int(uptime - stat['starttime'] / float(CLOCK_TICKS)))}
        if not stat['kernel']:
            try:
                status = read_pid_status(pid, root)
                row['rss_kb'] = status.get('VmRSS_kb', 0)
                row['oom_score_adj'] = read_pid_oom_score_adj(pid, root)
                row['unit'] = unit_of(read_pid_cgroup(pid, root))
                row['cmdline'] = ' '.join(read_pid_cmdline(pid, root))
            except ProcessGone:
                continue
        rows[pid] = row
    return rows


def ancestors(rows, pid):
    """``pid`` and every process above it up to (not including) PID 1."""
    found = []
    seen = set()
    while pid and pid not in seen and pid != 1:
        seen.add(pid)
        found.append(pid)
        row = rows.get(pid)
        if row is None:
            break
        pid = row['ppid']
    return found


class Rules(object):
    """What to choose and what never to touch.

    select: 'largest' (every user process) or narrowed by ``pid``, ``process`` (regex on comm or
    cmdline, see ``match``) and ``unit`` (regex on the systemd unit name); the largest RSS wins.
    protect: [{'unit': name} or {'process': regex, 'match': comm|cmdline}], e.g. oom_protect's
    critical list."""

    def __init__(self, pid=None, process=None, match='comm', unit=None, min_rss_kb=0, min_age_s=0,
                 protect=()):
        # what to select, then the floors a candidate must reach
        self.pid, self.process, self.match, self.unit = pid, process, match, unit
        self.min_rss_kb, self.min_age_s = min_rss_kb, min_age_s
        self.process_re = compile_pattern(process) if process else None
        self.unit_re = compile_pattern(unit) if unit else None
        self.protect = []
        for index, item in enumerate(protect or ()):
            if not isinstance(item, dict) or bool(item.get('unit')) == bool(item.get('process')):
                raise RunawayError('protect[%d]: each item names exactly one of unit or process (got %r)'
                                   % (index, item))
            match = item.get('match') or 'comm'
            if match not in ('comm', 'cmdline'):
                raise RunawayError('protect[%d]: match must be comm or cmdline, got %r' % (index, match))
            if item.get('unit'):
                unit = item['unit'] if '.' in item['unit'] else item['unit'] + SERVICE_SUFFIX
                self.protect.append({'unit': unit, 'label': 'unit %s' % unit})
            else:
                try:
                    regex = compile_pattern(item['process'])
                except TargetError as exc:
                    raise RunawayError('protect[%d]: %s' % (index, exc))
                self.protect.append({'regex': regex, 'match': match,
                                     'label': 'process %r (%s)' % (item['process'], match)})

    def describe(self):
        """The rules in words, in the order they are applied."""
        if self.pid is not None:
            scope = 'pid %d' % self.pid
        else:
            parts = []
            if self.process_re is not None:
                what = 'name (comm)' if self.match == 'comm' else 'command line'
                parts.append('%s matches %r' % (what, self.process))
            if self.unit_re is not None:
                parts.append('systemd unit matches %r' % self.unit)
            scope = 'user processes whose %s' % ' and whose '.join(parts) if parts else 'all user processes'
        lines = ['choose: the largest resident memory (RSS) among %s' % scope,
                 'never: PID 1, kernel threads, zombies',
                 'never: the SSH daemon (%s, or a process of %s)' % ('/'.join(SSH_NAMES), '/'.join(SSH_UNITS)),
                 'never: the process running this task and its ancestors',
                 'never: a process with oom_score_adj below 0 (someone marked it as protected)']
        if self.protect:
            lines.append('never: the critical list (%s)' % ', '.join(p['label'] for p in self.protect))
        lines.append('never: a process younger than %d s (min_age)' % self.min_age_s)
        lines.append('never: a process smaller than %s RSS (min_rss)' % format_size(self.min_rss_kb * 1024))
        return lines

    def selects(self, row):
        if self.pid is not None:
            return row['pid'] == self.pid
        if row['kernel']:
            return self.process_re is None and self.unit_re is None
        if self.process_re is not None:
            text = row['name'] if self.match == 'comm' else row.get('cmdline', '')
            if not text or not self.process_re.search(text):
                return False
        if self.unit_re is not None and not (row.get('unit') and self.unit_re.search(row['unit'])):
            return False
        return True

    def protected_by(self, row):
        for item in self.protect:
            if 'unit' in item:
                if row.get('unit') == item['unit']:
                    return item['label']
            else:
                text = row['name'] if item['match'] == 'comm' else row.get('cmdline', '')
                if text and item['regex'].search(text):
                    return item['label']
        return None

    def refusal(self, row, own):
        """Why ``row`` may not be stopped, or None."""
        if row['pid'] == 1:
            return 'PID 1 (init) is never stopped'
        if row['kernel']:
            return 'kernel thread'
        if row['state'] in ('Z', 'X'):
            return 'already exiting (zombie)'
        if row['pid'] in own:
            return 'runs this task (the module or one of its ancestors)'
        if row['name'] in SSH_NAMES or row.get('unit') in SSH_UNITS:
            return 'the SSH daemon is never stopped'
        if row['oom_score_adj'] < 0:
            return 'oom_score_adj %d is below 0: marked as protected' % row['oom_score_adj']
        label = self.protected_by(row)
        if label:
            return 'on the critical list (%s)' % label
        if row['age_s'] < self.min_age_s:
            return 'younger than min_age (%d s < %d s)' % (row['age_s'], self.min_age_s)
        if row['rss_kb'] < self.min_rss_kb:
            sizes = (format_size(row['rss_kb'] * 1024), format_size(self.min_rss_kb * 1024))
            return 'smaller than min_rss (%s < %s)' % sizes
        return None


def evaluate(rows, rules, own, count=1):
    """Every process the selection matches, largest RSS first, with a verdict.

    Returns [{pid, name, rss_kb, age_s, oom_score_adj, unit, verdict, reason}]: the first
    ``count`` eligible ones are 'chosen', the rest 'eligible'; refused ones carry the reason."""
    matched = [row for row in rows.values() if rules.selects(row)]
    matched.sort(key=lambda row: (-row.get('rss_kb', 0), row['pid']))
    result = []
    chosen = 0
    for row in matched:
        reason = rules.refusal(row, own)
        if reason is None:
            verdict = 'chosen' if chosen < count else 'eligible'
            chosen += verdict == 'chosen'
        else:
            verdict = 'refused'
        result.append({'pid': row['pid'], 'name': row['name'], 'rss_kb': row.get('rss_kb', 0),
                       'age_s': row['age_s'], 'oom_score_adj': row.get('oom_score_adj'),
                       'unit': row.get('unit'), 'verdict': verdict, 'reason': reason})
    return result


def mib(kb):
    """kB for people: '3072.0 MiB'."""
    return '%.1f MiB' % (kb / 1024.0)


def verdict_line(candidate):
    """One candidate of evaluate() as a line for people."""
    text = 'pid %d %s (%.1f MiB RSS, %d s old%s): %s' % (
        candidate['pid'], candidate['name'], candidate['rss_kb'] / 1024.0, candidate['age_s'],
        ', unit %s' % candidate['unit'] if candidate['unit'] else '', candidate['verdict'])
    return text + (', ' + candidate['reason'] if candidate['reason'] else '')


def still_running(pid, starttime, root='/'):
    """Whether the very process (same start time: not a reused pid) is alive and not a zombie."""
    try:
        text = _read(root, '/proc/%d/stat' % pid)
    except ProcError:
        return False
    close_at = text.rfind(')')
    fields = text[close_at + 2:].split()
    return fields[0] not in ('Z', 'X') and int(fields[19]) == starttime


def wait_gone(pid, starttime, timeout, root='/', sleep=time.sleep, clock=time.monotonic):
    """Poll until the process is gone; True when it went within ``timeout`` seconds."""
    deadline = clock() + timeout
    while still_running(pid, starttime, root):
        if clock() >= deadline:
            return False
        sleep(0.1)
    return True


def stop_process(row, grace, root='/', kill=os.kill, sleep=time.sleep, clock=time.monotonic):
    """SIGTERM, up to ``grace`` seconds to exit, then SIGKILL. Returns {signals, exited, seconds}."""
    pid, start = row['pid'], row['starttime']
    began = clock()
    sent = []
    for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        if not still_running(pid, start, root):
            break
        try:
            kill(pid, signum)
        except OSError:
            break   # exited between the check and the signal
        sent.append(signal.Signals(signum).name)
        if wait_gone(pid, start, wait, root, sleep, clock):
            break
    return {'signals': sent, 'exited': not still_running(pid, start, root), 'seconds': round(clock() - began, 2)}


def stop_unit(row, unit, action, grace, systemctl, root='/', sleep=time.sleep, clock=time.monotonic):
    """Stop the unit's processes through systemd: ``restart`` (systemd's own TERM, then KILL after
    TimeoutStopSec, then start) or ``kill`` (systemctl kill SIGTERM, SIGKILL after ``grace``).
    ``systemctl(args)`` runs systemctl and raises RunawayError on failure."""
    pid, start = row['pid'], row['starttime']
    began = clock()
    if action == 'restart':
        systemctl(['restart', unit])
        commands = ['systemctl restart %s' % unit]
    else:
        commands = []
        for signame, wait in (('SIGTERM', grace), ('SIGKILL', 10)):
            if not still_running(pid, start, root):
                break
            systemctl(['kill', '--kill-whom=all', '--signal=%s' % signame, unit])
            commands.append('systemctl kill --kill-whom=all --signal=%s %s' % (signame, unit))
            if wait_gone(pid, start, wait, root, sleep, clock):
                break
    return {'commands': commands, 'exited': not still_running(pid, start, root),
            'seconds': round(clock() - began, 2)}
