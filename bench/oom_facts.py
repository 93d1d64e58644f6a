# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: oom_facts on a large kernel log next to `LC_ALL=C grep -c 'Killed process'`.

Writes a realistic kern.log (syslog prefix with [uptime], mostly ordinary kernel and daemon noise,
1,000 OOM reports of mixed kernel eras spread through it) into /var/tmp, runs grep and the module
(the way Ansible runs it: `python oom_facts.py args.json`) on it, prints wall time and peak RSS
of each (best, median and worst of the rounds: other work on the machine shows as spread), the
ratio of the best times, and checks that exactly 1,000 events were found.  The log is deleted at
the end unless --keep; --log reuses a kept one (no new 30 s generation).  --python runs the module
with another interpreter, e.g. the /usr/bin/python3 Ansible uses on a managed host; ansible's
module_utils are put on its path the way AnsiballZ ships them.
Usage: bench/oom_facts.py [--size 1G] [--rounds 5] [--keep] [--log PATH] [--python PATH]
Targets (issue 11): median wall time at most 1.3x grep's median in the same run, peak RSS at most
64 MiB, every event and every kill found.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from collection_env import collection_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENTS = 1000
HOST = 'web-07'

NOISE = [
    'EXT4-fs (sda1): mounted filesystem with ordered data mode. Opts: (null)',
    'EXT4-fs (dm-0): re-mounted. Opts: errors=remount-ro',
    '[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.{n} DST=10.0.0.7 LEN=40 TOS=0x00 '
    'PREC=0x00 TTL=244 ID=54321 PROTO=TCP SPT={p} DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0',
    'audit: type=1400 audit(1700000000.{n}:{p}): apparmor="DENIED" operation="open" profile="snap.lxd.daemon" '
    'name="/proc/{p}/mountinfo" pid={p} comm="lxd" requested_mask="r" denied_mask="r" fsuid=0 ouid=0',
    'docker0: port 2(veth{h}) entered blocking state',
    'docker0: port 2(veth{h}) entered disabled state',
    'device veth{h} entered promiscuous mode',
    'IPv6: ADDRCONF(NETDEV_CHANGE): veth{h}: link becomes ready',
    'eth0: renamed from veth{h}',
    'TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.  Check SNMP counters.',
    'nf_conntrack: nf_conntrack: table full, dropping packet',
    'usb 1-1.{n}: new high-speed USB device number {n} using ehci-pci',
    'usb 1-1.{n}: New USB device found, idVendor=0781, idProduct=5567, bcdDevice= 1.00',
    'sd 2:0:0:0: [sdb] 30031872 512-byte logical blocks: (15.4 GB/14.3 GiB)',
    'python3[{p}]: segfault at 0 ip 00007f3a1c2b4e10 sp 00007ffd2c3b1f88 error 4 in libc.so.6[7f3a1c000000+195000]',
    'INFO: task kworker/u16:{n}:{p} blocked for more than 120 seconds.',
    '      Not tainted 5.15.0-91-generic #101-Ubuntu',
    '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
    'perf: interrupt took too long (2504 > 2500), lowering kernel.perf_event_max_sample_rate to 79750',
    'kvm: already loaded the other module',
    'KVM: vcpu0, guest rIP: 0xffffffff8104f5b6 disabled perfctr wrmsr: 0xc2 data 0xffff',
    'IPVS: rr: TCP 10.96.0.1:443 - no destination available',
    'nfs: server filer01 not responding, still trying',
    'nfs: server filer01 OK',
    'e1000e 0000:00:1f.6 eno1: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx',
    'mce: [Hardware Error]: Machine check events logged',
    'Bluetooth: hci0: Reading supported features failed (-16)',
    'xfs filesystem being remounted at /var/lib/docker supports timestamps until 2038 (0x7fffffff)',
]
DAEMON_NOISE = [
    'sshd[{p}]: Accepted publickey for deploy from 198.51.100.{n} port {p} ssh2: RSA SHA256:abc',
    'CRON[{p}]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)',
    'systemd[1]: session-{n}.scope: Killing process {p} (sleep) with signal SIGKILL.',
    'systemd[1]: Started Session {n} of User deploy.',
    'dockerd[{p}]: time="2024-01-01T00:00:00Z" level=info msg="ignoring event" module=libcontainerd namespace=moby',
]

# One OOM invocation each, as the kernel of that era printed it; {pid} and {name} vary.
REPORTS = [
    # 2.6.32 / RHEL6: oom_adj in the header, old task table, RHEL6 kill line
    ['{name} invoked oom-killer: gfp_mask=0x201da, order=0, oom_adj=0, oom_score_adj=0',
     '{name} cpuset=/ mems_allowed=0',
     'Pid: {pid}, comm: {name} Not tainted 2.6.32-754.el6.x86_64 #1',
     'Call Trace:',
     ' [<ffffffff810d6d71>] ? cpuset_print_task_mems_allowed+0x91/0xb0',
     ' [<ffffffff81128ce0>] ? dump_header+0x90/0x1b0',
     'Mem-Info:',
     'Node 0 DMA per-cpu:',
     'CPU    0: hi:    0, btch:   1 usd:   0',
     'active_anon:405991 inactive_anon:57 isolated_anon:0',
     ' active_file:35 inactive_file:69 isolated_file:0',
     ' free:12929 slab_reclaimable:1635 slab_unreclaimable:1919',
     '[ pid ]   uid  tgid total_vm      rss cpu oom_adj oom_score_adj name',
     '[  321]     0   321     2763      240   1     -17         -1000 udevd',
     '[{pid:5d}]   500 {pid:5d}   410347   398810   0       0             0 {name}',
     'Out of memory: Kill process {pid} ({name}) score 919 or sacrifice child',
     'Killed process {pid}, UID 500, ({name}) total-vm:1641388kB, anon-rss:1595164kB, file-rss:76kB'],
    # 3.10 / RHEL7: RHEL7 kill line with UID after the name
    ['{name} invoked oom-killer: gfp_mask=0x280da, order=0, oom_score_adj=0',
     'CPU: 3 PID: {pid} Comm: {name} Not tainted 3.10.0-1160.el7.x86_64 #1',
     'Task in /system.slice/app.service killed as a result of limit of /system.slice/app.service',
     'memory: usage 524288kB, limit 524288kB, failcnt 1093',
     'memory+swap: usage 524288kB, limit 9007199254740988kB, failcnt 0',
     'Memory cgroup stats for /system.slice/app.service: cache:0KB rss:524288KB rss_huge:0KB mapped_file:0KB',
     '[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name',
     '[{pid:5d}]  1000 {pid:5d}   410347   131072     788        0             0 {name}',
     'Memory cgroup out of memory: Kill process {pid} ({name}) score 1001 or sacrifice child',
     'Killed process {pid} ({name}), UID 1000, total-vm:1641388kB, anon-rss:524000kB, file-rss:288kB, shmem-rss:0kB'],
    # 4.14: nodemask in the header (double-space form), pgtables_bytes table
    ['{name} invoked oom-killer: gfp_mask=0x14200ca(GFP_HIGHUSER_MOVABLE), nodemask=(null),  order=0, oom_score_adj=0',
     '{name} cpuset=/ mems_allowed=0',
     'CPU: 1 PID: {pid} Comm: {name} Not tainted 4.14.0-3-amd64 #1 Debian 4.14.17-1',
     'Mem-Info:',
     'active_anon:1999425 inactive_anon:0 isolated_anon:0',
     ' free:1097 free_pcp:8616 free_cma:0',
     'Node 0 DMA free:32kB min:20kB low:32kB high:44kB',
     'Tasks state (memory values in pages):',
     '[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name',
     '[  {pid}]     0  {pid}  2628942  1995298 16052224        0             0 {name}',
     'Out of memory: Kill process {pid} ({name}) score 950 or sacrifice child',
     'Killed process {pid} ({name}) total-vm:10515768kB, anon-rss:7980628kB, file-rss:564kB, shmem-rss:0kB',
     'oom_reaper: reaped process {pid} ({name}), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB'],
    # 5.15 cgroup v2: oom-kill: summary line, combined kill line
    ['{name} invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=200',
     'CPU: 12 PID: {pid} Comm: {name} Tainted: P           O      5.15.0-91-generic #101-Ubuntu',
     'memory: usage 51200kB, limit 51200kB, failcnt 37',
     'swap: usage 0kB, limit 0kB, failcnt 0',
     'Memory cgroup stats for /user.slice/user-1000.slice/session-3.scope:',
     'anon 52195328',
     'file 0',
     'Tasks state (memory values in pages):',
     '[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name',
     '[ {pid}]  1000 {pid}    73357    14530   180224        0           200 {name}',
     'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/user.slice/user-1000.slice/'
     'session-3.scope,task_memcg=/user.slice/user-1000.slice/session-3.scope,task={name},pid={pid},uid=1000',
     'Memory cgroup out of memory: Killed process {pid} ({name}) total-vm:293428kB, anon-rss:50000kB, file-rss:1200kB, '
     'shmem-rss:0kB, UID:1000 pgtables:176kB oom_score_adj:200'],
    # 6.11 global: CPU line with UID, rss_anon columns, global_oom
    ['{name} invoked oom-killer: gfp_mask=0x440dc0(GFP_KERNEL_ACCOUNT|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=0',
     'CPU: 1 UID: 0 PID: {pid} Comm: {name} Not tainted 6.11.0-10669-g11a299a7933e #15',
     'Mem-Info:',
     'active_anon:1999425 inactive_anon:0 isolated_anon:0',
     ' free:1097 free_pcp:8616 free_cma:0',
     'Tasks state (memory values in pages):',
     '[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name',
     '[ {pid}]     0 {pid}  2628942  1995298  1995157      141         0 16052224        0             0 {name}',
     'oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task={name},pid={pid},uid=0',
     'Out of memory: Killed process {pid} ({name}) total-vm:10515768kB, anon-rss:7980628kB, file-rss:564kB, shmem-rss:0kB, '
     'UID:0 pgtables:15676kB oom_score_adj:0'],
    # rate-limited: the kernel printed only the kill line
    ['Out of memory: Killed process {pid} ({name}) total-vm:10515768kB, anon-rss:7980628kB, file-rss:564kB, shmem-rss:0kB, '
     'UID:0 pgtables:15676kB oom_score_adj:0'],
]
NAMES = ['java', 'python3', 'GC Thread#9', 'CPU 2/KVM', 'postgres', 'node', 'chrome', 'mysqld', 'kworker/u8:2', 'stress-ng-vm']


def parse_size(text):
    units = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}
    text = text.strip().upper().rstrip('B').rstrip('I')
    if text[-1:] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def generate(path, size, seed=3):
    rnd = random.Random(seed)
    avg_line = 110
    n_lines = max(size // avg_line, EVENTS * 50)
    span = 200 * 86400.0
    start = time.time() - span - 3600
    step = span / n_lines
    every = n_lines // EVENTS
    t = start
    uptime = 1000.0
    written = 0
    events = 0
    buf = []
    bufsize = 0
    stamp_cache = (None, None)
    with open(path, 'w') as f:
        i = 0
        while written < size or events < EVENTS:
            i += 1
            t += step
            uptime += step
            sec = int(t)
            if stamp_cache[0] != sec:
                stamp_cache = (sec, time.strftime('%b %e %H:%M:%S ', time.localtime(sec)) + HOST)
            prefix = stamp_cache[1]
            if i % every == every // 2 and events < EVENTS:
                events += 1
                pid = rnd.randint(300, 4000000)
                name = rnd.choice(NAMES)
                lines = ['%s kernel: [%12.6f] %s' % (prefix, uptime, line.format(pid=pid, name=name))
                         for line in REPORTS[events % len(REPORTS)]]
                text = '\n'.join(lines) + '\n'
            elif rnd.random() < 0.15:
                tmpl = rnd.choice(DAEMON_NOISE)
                text = '%s %s\n' % (prefix, tmpl.format(n=i % 250, p=i % 32768 + 100))
            else:
                tmpl = rnd.choice(NOISE)
                text = '%s kernel: [%12.6f] %s\n' % (prefix, uptime, tmpl.format(n=i % 250, p=i % 32768 + 100, h='%07x' % (i % 0xfffffff)))
            buf.append(text)
            bufsize += len(text)
            if bufsize > 1 << 20:
                f.write(''.join(buf))
                written += bufsize
                buf, bufsize = [], 0
        f.write(''.join(buf))
        written += bufsize
    return written, events


def run_measured(argv, env=None):
    """Wall time, peak RSS (KiB), stdout, exit code and CPU seconds (with its workers) of one child."""
    started = time.time()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, 'waitstatus_to_exitcode') else status >> 8
    return time.time() - started, usage.ru_maxrss, out, proc.returncode, usage.ru_utime + usage.ru_stime


def _median(runs):
    walls = sorted(r[0] for r in runs)
    return walls[len(walls) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    ap.add_argument('--size', default='1G', help='log size, e.g. 64M or 1G (default 1G)')
    ap.add_argument('--rounds', type=int, default=5, help='measure this many times (default 5)')
    ap.add_argument('--keep', action='store_true', help='do not delete the generated log')
    ap.add_argument('--log', help='use this log, kept by an earlier --keep run of this script, instead of writing one')
    ap.add_argument('--python', default=os.environ.get('ANSIBLE_PYTHON_INTERPRETER') or sys.executable,
                    help='interpreter that runs the module, as Ansible would on the managed host '
                         '(default: $ANSIBLE_PYTHON_INTERPRETER, which make sets to /usr/bin/python3, else this one)')
    args = ap.parse_args()
    size = parse_size(args.size)

    work = tempfile.mkdtemp(prefix='oom_facts_bench.', dir='/var/tmp')
    log = os.path.join(work, 'kern.log')
    try:
        if args.log:
            log = os.path.abspath(args.log)
            print('using %s: %.1f MiB' % (log, os.path.getsize(log) / 1048576.0))
        else:
            t0 = time.time()
            written, events = generate(log, size)
            print('generated %s: %.1f MiB, %d OOM reports in %.1fs' % (log, written / 1048576.0, events, time.time() - t0))

        env = collection_env(work, args.python)
        module = os.path.join(ROOT, 'plugins', 'modules', 'oom_facts.py')
        if os.path.exists(module):
            args_file = os.path.join(work, 'args.json')
            with open(args_file, 'w') as f:
                json.dump({'ANSIBLE_MODULE_ARGS': {'sources': [log], 'max_events': 1}}, f)
            parse_argv = [args.python, module, args_file]
            label = 'oom_facts module'
        else:
            code = ('import json, sys\n'
                    'from ansible_collections.oomguard.memory.plugins.module_utils.oom_sources import collect_events\n'
                    'from ansible_collections.oomguard.memory.plugins.module_utils.oom_sources import summarize\n'
                    'events = collect_events([sys.argv[1]], None, sys.stderr.write)\n'
                    'print(json.dumps({"ansible_facts": {"oom": {"summary": summarize(events)}}}))\n')
            parse_argv = [args.python, '-c', code, log]
            label = 'collect_events (module not written yet)'
        grep_argv = ['grep', '-c', 'Killed process', log]
        # The same search in C: GNU grep for the lines holding any of the scanner's needles.
        needles = subprocess.check_output(
            [args.python, '-c', 'from ansible_collections.oomguard.memory.plugins.module_utils.oom_scan import NEEDLES; '
             'print("\\n".join(n.decode() for n in NEEDLES))'], env=env).decode().splitlines()
        grep_needles_argv = ['grep', '-c', '-F'] + [a for n in needles for a in ('-e', n)] + [log]

        subprocess.call(['cat', log], stdout=subprocess.DEVNULL)  # page cache warm for both
        greps, greps_needles, parses = [], [], []
        found = kills = grep_count = None
        for _round in range(args.rounds):
            g = run_measured(grep_argv, env=dict(os.environ, LC_ALL='C'))
            greps_needles.append(run_measured(grep_needles_argv, env=dict(os.environ, LC_ALL='C')))
            p = run_measured(parse_argv, env=env)
            if p[3] != 0:
                sys.stderr.write(p[2].decode('utf-8', 'replace')[-2000:])
                print('parse failed with rc=%s' % p[3])
                return 1
            grep_count = int(g[2].strip() or 0)
            summary = json.loads(p[2])['ansible_facts']['oom']['summary']
            found, kills = summary['events'], summary['kills']
            greps.append(g)
            parses.append(p)

        print('')
        print('python: %s (%s)' % (args.python, subprocess.check_output(
            [args.python, '-c', 'import sys; print(sys.version.split()[0])']).decode().strip()))
        print('%-44s %24s %14s %8s' % ('command (%d rounds)' % args.rounds, 'wall s best/median/worst', 'peak RSS MiB',
                                       'CPU s'))
        for name, runs in (("LC_ALL=C grep -c 'Killed process'", greps),
                           ('LC_ALL=C grep -c -F (the %d scanner needles)' % len(needles), greps_needles),
                           (label, parses)):
            walls = sorted(r[0] for r in runs)
            rss = max(r[1] for r in runs) / 1024.0
            cpu = min(r[4] for r in runs)
            print('%-44s %8.3f %7.3f %7.3f %14.1f %8.3f' % (name, walls[0], walls[len(walls) // 2], walls[-1], rss, cpu))
        median = sorted(r[0] for r in parses)[len(parses) // 2] / sorted(r[0] for r in greps)[len(greps) // 2]
        best = min(r[0] for r in parses) / min(r[0] for r in greps)
        print('')
        print('ratio parse/grep: median %.2f, best %.2f (target: median <= 1.3); peak RSS target <= 64 MiB'
              % (median, best))
        print('for scale, grep -F on the scanner needles / grep -c: median %.2f; parse / grep -F needles: median %.2f'
              % (_median(greps_needles) / _median(greps), _median(parses) / _median(greps_needles)))
        print('grep lines: %d; events found: %d (expected %d); kills found: %d' % (grep_count, found, EVENTS, kills))
        ok = found == EVENTS and kills == grep_count
        print('events: %s' % ('OK' if ok else 'WRONG'))
        return 0 if ok else 1
    finally:
        if args.keep:
            print('kept %s' % work)
        else:
            # a --log file lives elsewhere and stays
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
