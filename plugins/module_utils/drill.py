# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OOM fire drill: a memory hog in a box of its own, and the proof that the box held.

Private to the oomguard.memory collection: no compatibility promise to other code.

Map of this file:
  - ``GATE`` is the hog's launcher: it waits for one line on stdin, so the drill can check the
    confinement of the process before it allocates a single byte, then either allocates
    (the Python hog) or execs stress-ng.
  - Confinements, one per cgroup layout, all with the same small interface (``preflight()`` lists
    what is missing, ``create()``, ``spawn(argv)``, ``verify(pid)``, ``counters()``, ``remove()``,
    ``leftovers()``, ``cgroup`` as the kernel prints it in ``oom_memcg=``):
    ``CgroupV1`` (a memory cgroup with memory.limit_in_bytes and memory.memsw.limit_in_bytes, so
    swap cannot hide the kill), ``CgroupV2`` (memory.max and memory.swap.max=0, no systemd) and
    ``SystemdScope`` (``systemd-run --scope -p MemoryMax= -p MemorySwapMax=0 --collect``).
  - ``critical_status`` reads which processes each critical item has and whether they are
    protected (oom_score_adj at or below the item's ceiling).
  - ``Check`` results are plain dicts {name, passed, detail}; ``verdict`` folds them.
Readers take ``root`` so unit tests use fake trees; commands go through an injected runner.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import os
import signal
import subprocess
import time

from ansible_collections.oomguard.memory.plugins.module_utils import procfs
from ansible_collections.oomguard.memory.plugins.module_utils.cgroups import read_interface, write_interface
from ansible_collections.oomguard.memory.plugins.module_utils.errors import OomguardError
from ansible_collections.oomguard.memory.plugins.module_utils.sizes import parse_size
from ansible_collections.oomguard.memory.plugins.module_utils.processes import (
    compile_pattern, in_control_group, match_pattern)

MIB = 1024 * 1024

# The hog's launcher (argv: marker, kind, then the size in bytes for 'python' or the command for
# 'exec'). It reads one line first: nothing is allocated before the drill has seen the process
# inside its limit and said go. The Python hog touches every page so the memory is really used,
# then sleeps: a hog still alive at the timeout means the limit did not hold.
GATE = r'''
import os, sys, time
sys.stdin.readline()
if sys.argv[2] == "python":
    size, chunk, held = int(sys.argv[3]), 16 * 1024 * 1024, []
    while len(held) * chunk < size:
        block = bytearray(chunk)
        block[::4096] = b"x" * (chunk // 4096)
        held.append(block)
    while True:
        time.sleep(1)
os.execvp(sys.argv[3], sys.argv[3:])
'''


class DrillError(OomguardError):
    """A request or a host state the drill refuses; str() is the sentence for the user."""


def mib(size):
    """Bytes for people, in MiB with one decimal ('64.0 MiB'); '?' for None."""
    return '?' if size is None else '%.1f MiB' % (size / float(MIB))


def check(name, passed, detail):
    return {'name': name, 'passed': bool(passed), 'detail': detail}


def verdict(checks):
    return 'passed' if checks and all(c['passed'] for c in checks) else 'failed'


def hog_command(kind, size, timeout, marker, python, stress_ng=None):
    """The argv that starts the gated hog of ``size`` bytes."""
    head = [python, '-c', GATE, marker]
    if kind == 'stress-ng':
        # --oomable: a worker the OOM killer takes is not restarted, so the run ends with the kill.
        return head + ['exec', stress_ng, '--vm', '1', '--vm-bytes', '%dM' % (size // MIB), '--vm-keep',
                       '--oomable', '--timeout', '%ds' % timeout, '--quiet']
    return head + ['python', str(size)]


def _read_text(path):
    return read_interface(path, error=DrillError, missing=(errno.ENOENT, errno.ENODEV))


def _write(path, text):
    write_interface(path, text, error=DrillError)


def _counter(text, key):
    if text is None:
        return None
    return procfs.parse_vmstat(text).get(key)


def _kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _rmdir_emptied(directory, procs_file='cgroup.procs', attempts=50):
    """Kill whatever is left in a cgroup, then rmdir it; True when it is gone."""
    for _attempt in range(attempts):
        if not os.path.isdir(directory):
            return True
        text = _read_text(os.path.join(directory, procs_file)) or ''
        _kill_all(int(pid) for pid in text.split())
        try:
            os.rmdir(directory)
            return True
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return True
            time.sleep(0.1)
    return not os.path.isdir(directory)


class _RawCgroup(object):
    """What the v1 and raw v2 confinements share: a directory the module makes and removes."""

    version = None
    limit_file = None
    swap_limit_file = None
    usage_peak_file = None
    events_file = None

    def __init__(self, memory_root, name, limit, swap_on, root='/'):
        self.memory_root = memory_root
        self.name = name
        self.limit = limit
        self.swap_on = swap_on
        self.root = root
        self.directory = os.path.join(memory_root, name)
        self.cgroup = '/' + name
        self.created = False

    def describe(self):
        return 'cgroup %s (%s) with a %s limit' % (self.cgroup, self.version, mib(self.limit))

    def swap_limit(self):
        """The value for swap_limit_file that keeps the hog out of swap."""
        raise NotImplementedError

    def create(self):
        try:
            os.mkdir(self.directory)
        except OSError as exc:
            raise DrillError('cannot create the drill cgroup %s: %s' % (self.directory, exc.strerror))
        self.created = True
        _write(os.path.join(self.directory, self.limit_file), '%d\n' % self.limit)
        swap_file = os.path.join(self.directory, self.swap_limit_file)
        if os.path.exists(swap_file):
            _write(swap_file, '%d\n' % self.swap_limit())

    def spawn(self, argv):
        procs = os.path.join(self.directory, 'cgroup.procs')

        def enter():
            # Runs in the child before exec: the hog is inside the limit before its first instruction.
            _write(procs, '%d\n' % os.getpid())
        # Not run_command: the hog must be started, checked in its cgroup and released while it runs.
        return subprocess.Popen(  # pylint: disable=ansible-bad-function
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=enter, close_fds=True)

    def verify(self, pid):
        """None when ``pid`` sits in the cgroup and the limits read back as set, else why not."""
        path = procfs.memory_cgroup_of(procfs.read_pid_cgroup(pid, self.root))
        if path != self.cgroup:
            return 'pid %d is in memory cgroup %s, not in %s' % (pid, path, self.cgroup)
        return self.verify_limits()

    def counters(self):
        text = _read_text(os.path.join(self.directory, self.events_file))
        peak = _read_text(os.path.join(self.directory, self.usage_peak_file)) if self.usage_peak_file else None
        return {'oom_kill': _counter(text, 'oom_kill'), 'peak_bytes': int(peak) if peak and peak.strip().isdigit() else None}

    def procs(self):
        return [int(p) for p in (_read_text(os.path.join(self.directory, 'cgroup.procs')) or '').split()]

    def remove(self):
        if not self.created:
            return True
        return _rmdir_emptied(self.directory)

    def leftovers(self):
        return ['cgroup directory %s' % self.directory] if os.path.isdir(self.directory) else []


class CgroupV1(_RawCgroup):
    """A v1 memory cgroup; with swap on, memory+swap is limited too (memsw), or the hog would page
    out and live on instead of being killed."""

    version = 'cgroup v1'
    events_file = 'memory.oom_control'
    usage_peak_file = 'memory.max_usage_in_bytes'

    def preflight(self):
        problems = []
        if not os.path.isdir(self.memory_root) or not os.access(self.memory_root, os.W_OK):
            return ['the v1 memory hierarchy %s is missing or not writable (need root)' % self.memory_root]
        if self.swap_on and not os.path.exists(os.path.join(self.memory_root, 'memory.memsw.limit_in_bytes')):
            problems.append('swap is on but the kernel has no swap accounting (memory.memsw.limit_in_bytes is '
                            'missing): the hog could escape into swap instead of being killed; boot with '
                            'swapaccount=1 or run the drill without swap')
        return problems

    limit_file = 'memory.limit_in_bytes'
    swap_limit_file = 'memory.memsw.limit_in_bytes'

    def swap_limit(self):
        # memory.memsw.limit_in_bytes counts memory and swap together: the same limit leaves no swap.
        return self.limit

    def verify_limits(self):
        limit = _read_text(os.path.join(self.directory, 'memory.limit_in_bytes'))
        if limit is None or int(limit) > self.limit:
            return 'memory.limit_in_bytes of %s reads %s, not %d' % (self.cgroup, (limit or 'nothing').strip(), self.limit)
        memsw = _read_text(os.path.join(self.directory, 'memory.memsw.limit_in_bytes'))
        if self.swap_on and (memsw is None or int(memsw) > self.limit):
            return 'memory.memsw.limit_in_bytes of %s reads %s: swap is not limited' % (
                self.cgroup, (memsw or 'nothing').strip())
        control = _read_text(os.path.join(self.directory, 'memory.oom_control')) or ''
        if _counter(control, 'oom_kill_disable'):
            return 'the OOM killer is disabled in %s (memory.oom_control oom_kill_disable 1)' % self.cgroup
        return None


class CgroupV2(_RawCgroup):
    """A raw cgroup v2 child of the unified root (hosts with cgroup v2 but without systemd)."""

    version = 'cgroup v2'
    events_file = 'memory.events'
    usage_peak_file = 'memory.peak'

    def preflight(self):
        control = _read_text(os.path.join(self.memory_root, 'cgroup.subtree_control'))
        if control is None or 'memory' not in control.split():
            return ['the cgroup v2 root %s does not enable the memory controller for its children '
                    '(cgroup.subtree_control has no "memory")' % self.memory_root]
        return []

    limit_file = 'memory.max'
    swap_limit_file = 'memory.swap.max'

    def swap_limit(self):
        return 0

    def verify_limits(self):
        limit = _read_text(os.path.join(self.directory, 'memory.max'))
        if limit is None or limit.strip() == 'max' or int(limit) > self.limit:
            return 'memory.max of %s reads %s, not %d' % (self.cgroup, (limit or 'nothing').strip(), self.limit)
        swap_max = _read_text(os.path.join(self.directory, 'memory.swap.max'))
        if self.swap_on and (swap_max is None or swap_max.strip() != '0'):
            return 'memory.swap.max of %s reads %s: swap is not limited' % (self.cgroup, (swap_max or 'nothing').strip())
        return None


class SystemdScope(object):
    """A transient scope unit with MemoryMax= and MemorySwapMax=0 (cgroup v2 with systemd).

    ``--collect`` makes systemd unload the scope when it ends, failed or not, so nothing stays
    loaded; ``remove()`` still stops and resets it in case the drill is cut short."""

    version = 'systemd scope'

    def __init__(self, unified_root, name, limit, swap_on, run, root='/'):
        self.unified_root = unified_root
        self.name = name
        self.unit = name + '.scope'
        self.limit = limit
        self.swap_on = swap_on
        self.run = run            # run(argv) -> (rc, out, err), LC_ALL=C
        self.root = root
        self.cgroup = None        # known once the scope exists
        self.directory = None
        self.parent_events_before = None

    def describe(self):
        return 'systemd scope %s with MemoryMax=%s and MemorySwapMax=0' % (self.unit, mib(self.limit))

    def preflight(self):
        problems = []
        if not os.path.isdir(procfs.path_in(self.root, '/run/systemd/system')):
            problems.append('systemd is not PID 1 on this host, so no scope can be made')
        controllers = _read_text(os.path.join(self.unified_root or '/nonexistent', 'cgroup.controllers'))
        if controllers is None or 'memory' not in controllers.split():
            problems.append('the cgroup v2 hierarchy has no memory controller, so MemoryMax= would not be enforced')
        elif self.swap_on and not any(os.path.exists(os.path.join(self.unified_root, d, 'memory.swap.max'))
                                      for d in ('system.slice', 'init.scope', 'user.slice')):
            problems.append('swap is on but the kernel has no cgroup swap accounting (no memory.swap.max): '
                            'the hog could escape into swap instead of being killed')
        return problems

    def create(self):
        # systemd-run makes the scope when the hog is spawned.
        return None

    def spawn(self, argv):
        command = ['systemd-run', '--scope', '--quiet', '--collect', '--unit=%s' % self.unit,
                   '--description=oomguard OOM drill', '-p', 'MemoryMax=%d' % self.limit,
                   '-p', 'MemorySwapMax=0', '--'] + argv
        # Not run_command: the hog must be started, checked in its scope and released while it runs.
        return subprocess.Popen(  # pylint: disable=ansible-bad-function
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, close_fds=True, env=dict(os.environ, LC_ALL='C'))

    def _show(self, props):
        rc, out, err = self.run(['systemctl', 'show', self.unit] + ['--property=%s' % p for p in props])
        values = {}
        for line in (out or '').splitlines():
            key, sep, value = line.partition('=')
            if sep:
                values[key] = value
        return values

    def verify(self, pid, wait=10.0):
        """Wait for systemd-run to have made the scope and exec'd the gate, then check where it is."""
        deadline = time.monotonic() + wait
        while True:
            try:
                path = procfs.memory_cgroup_of(procfs.read_pid_cgroup(pid, self.root))
                cmdline = procfs.read_pid_cmdline(pid, self.root)
            except procfs.ProcError:
                return 'pid %d ended before the drill could check it' % pid
            if path and path.endswith('/' + self.unit) and 'systemd-run' not in ' '.join(cmdline[:1]):
                break
            if time.monotonic() >= deadline:
                return 'pid %d did not arrive in scope %s within %d s (it is in %s)' % (pid, self.unit, wait, path)
            time.sleep(0.05)
        self.cgroup = path
        self.directory = os.path.join(self.unified_root, path.lstrip('/'))
        # Read before the gate says go: nothing is allocated yet.
        self.parent_events_before = self._parent_oom_kill()
        limit = _read_text(os.path.join(self.directory, 'memory.max'))
        if limit is None or limit.strip() == 'max' or int(limit) > self.limit:
            return 'memory.max of %s reads %s: MemoryMax= was not applied' % (path, (limit or 'nothing').strip())
        swap_max = _read_text(os.path.join(self.directory, 'memory.swap.max'))
        if self.swap_on and (swap_max is None or swap_max.strip() != '0'):
            return 'memory.swap.max of %s reads %s: swap is not limited' % (path, (swap_max or 'nothing').strip())
        return None

    def _parent_oom_kill(self):
        # The scope's own counters go with it when systemd collects it; its slice counts the kills
        # of every child (hierarchical memory.events).
        if not self.directory:
            return None
        return _counter(_read_text(os.path.join(os.path.dirname(self.directory), 'memory.events')), 'oom_kill')

    def counters(self):
        own = _read_text(os.path.join(self.directory, 'memory.events')) if self.directory else None
        peak = _read_text(os.path.join(self.directory, 'memory.peak')) if self.directory else None
        parent = self._parent_oom_kill()
        delta = None
        if parent is not None and self.parent_events_before is not None:
            delta = parent - self.parent_events_before
        return {'oom_kill': _counter(own, 'oom_kill') if own is not None else delta,
                'peak_bytes': int(peak) if peak and peak.strip().isdigit() else None}

    def procs(self):
        if not self.directory:
            return []
        return [int(p) for p in (_read_text(os.path.join(self.directory, 'cgroup.procs')) or '').split()]

    def remove(self):
        state = self._show(['LoadState', 'ActiveState'])
        if state.get('LoadState', 'not-found') != 'not-found':
            if state.get('ActiveState') in ('active', 'activating', 'deactivating'):
                self.run(['systemctl', 'kill', '--signal=SIGKILL', self.unit])
                self.run(['systemctl', 'stop', self.unit])
            self.run(['systemctl', 'reset-failed', self.unit])
        for _attempt in range(50):
            if not self.leftovers():
                return True
            time.sleep(0.1)
        return False

    def leftovers(self):
        found = []
        if self._show(['LoadState']).get('LoadState', 'not-found') != 'not-found':
            found.append('unit %s is still loaded' % self.unit)
        if self.directory and os.path.isdir(self.directory):
            found.append('cgroup directory %s' % self.directory)
        return found


def choose_backend(requested, layout, systemd_booted):
    """'cgroup_v1', 'cgroup_v2' or 'systemd_scope' for ``requested`` ('auto' or one of those).
    auto: a systemd scope where systemd runs on a cgroup v2 memory controller, the v1 memory
    hierarchy where there is one, else a raw v2 cgroup."""
    if requested != 'auto':
        return requested
    if layout.get('memory_version') == 'v2':
        return 'systemd_scope' if systemd_booted else 'cgroup_v2'
    if layout.get('memory_version') == 'v1':
        return 'cgroup_v1'
    return 'cgroup_v2'


def critical_status(items, table, root='/', show=None):
    """For each critical item: {label, pids, oom_score_adj, starttimes, protected, problem}.

    ``items``: [{unit | process, match, max_oom_score_adj, ppid (only children of this pid)}]; ``table`` is
    processes.process_table(root); ``show(unit)`` returns the unit's ControlGroup (or None when
    systemd is not running)."""
    result = []
    for item in items:
        ceiling = item.get('max_oom_score_adj')
        ceiling = -1 if ceiling is None else ceiling
        if item.get('unit'):
            label = 'unit %s' % item['unit']
            control_group = show(item['unit']) if show is not None else None
            if show is None:
                result.append({'label': label, 'pids': [], 'protected': False, 'max_oom_score_adj': ceiling,
                               'problem': 'critical %s cannot be checked: systemd is not PID 1 on this host' % label})
                continue
            pids = in_control_group(table, control_group, root) if control_group else []
        else:
            label = 'process %r (%s)' % (item['process'], item.get('match') or 'comm')
            pids = match_pattern(table, compile_pattern(item['process']), item.get('match') or 'comm', root)
            if item.get('ppid') is not None:
                pids = [pid for pid in pids if table[pid]['ppid'] == item['ppid']]
        entry = {'label': label, 'pids': pids, 'max_oom_score_adj': ceiling, 'oom_score_adj': {},
                 'starttimes': {}, 'protected': False, 'problem': None}
        if not pids:
            entry['problem'] = 'critical %s is not running, so the drill cannot show that it survives' % label
            result.append(entry)
            continue
        for pid in pids:
            try:
                entry['oom_score_adj'][pid] = procfs.read_pid_oom_score_adj(pid, root)
                entry['starttimes'][pid] = table[pid]['starttime']
            except procfs.ProcError:
                continue
        exposed = dict((pid, adj) for pid, adj in entry['oom_score_adj'].items() if adj > ceiling)
        entry['protected'] = not exposed and bool(entry['oom_score_adj'])
        if exposed:
            entry['problem'] = ('critical %s is not protected: oom_score_adj %s above %d (apply the '
                                'oomguard.memory.oom_protect role first)'
                                % (label, ', '.join('%d for pid %d' % (adj, pid) for pid, adj in sorted(exposed.items())),
                                   ceiling))
        result.append(entry)
    return result


def survivors(status, root='/'):
    """For each critical item checked before the drill: the pids that are gone or were replaced."""
    lost = []
    for entry in status:
        for pid, start in sorted(entry.get('starttimes', {}).items()):
            try:
                now = procfs.read_pid_stat(pid, root)
            except procfs.ProcError:
                lost.append('%s: pid %d is gone' % (entry['label'], pid))
                continue
            if now['starttime'] != start or now['state'] in ('Z', 'X'):
                lost.append('%s: pid %d was replaced or is exiting' % (entry['label'], pid))
    return lost


def marker_processes(marker, root='/'):
    """Pids whose command line carries the drill's marker (hogs left behind)."""
    found = []
    for pid in procfs.list_pids(root):
        try:
            if marker in procfs.read_pid_cmdline(pid, root):
                found.append(pid)
        except procfs.ProcError:
            continue
    return found


def check_options(params, min_limit):
    """The drill's numbers, checked before anything is looked at: (limit, hog_size) in bytes.
    Critical units without a suffix get ``.service``, as systemctl would read them."""
    if params['timeout'] < 1:
        raise DrillError('timeout must be at least 1 second, got %d' % params['timeout'])
    if params['settle'] < 0:
        raise DrillError('settle must be 0 or more seconds, got %d' % params['settle'])
    for index, item in enumerate(params['critical']):
        if bool(item.get('unit')) == bool(item.get('process')):
            raise DrillError('critical[%d]: each item names exactly one of unit or process' % index)
        if item.get('unit') and '.' not in item['unit']:
            item['unit'] += '.service'
    limit = parse_size(params['limit'], name='limit')
    if limit < min_limit:
        raise DrillError('limit %s is below 16M; the hog needs room to start before it is killed' % params['limit'])
    if params['hog_size'] == 'auto':
        return limit, 4 * limit
    hog_size = parse_size(params['hog_size'], name='hog_size')
    if hog_size <= limit:
        raise DrillError('hog_size %s is not more than limit %s, so the hog would never be OOM-killed'
                         % (params['hog_size'], params['limit']))
    return limit, hog_size


def describe_exit(returncode):
    if returncode is None:
        return 'no exit status'
    if returncode < 0:
        return 'signal %d%s' % (-returncode, ' (SIGKILL)' if returncode == -9 else '')
    return 'exit code %d' % returncode


def protected_detail(critical):
    if not critical:
        return 'no critical service listed or running'
    return '; '.join('%s: pids %s, oom_score_adj %s (ceiling %d)'
                     % (s['label'], ', '.join(str(p) for p in s['pids']),
                        ', '.join(str(v) for v in sorted(set(s['oom_score_adj'].values()))), s['max_oom_score_adj'])
                     for s in critical)


def pid_summary(critical):
    return ', '.join('%s %s' % (s['label'], s['pids']) for s in critical) or 'none listed'
