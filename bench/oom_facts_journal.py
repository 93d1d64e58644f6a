# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the journal source of oom_facts next to `journalctl -k -o cat | grep -c 'Killed process'`.

Writes a journal file made for the test (no journald needed): a journal export stream of kernel
messages (ordinary noise with an OOM report every few hundred entries, all of this boot so that
`journalctl -k` sees them) imported with systemd-journal-remote into a temporary directory.
Then, in the same run and the same number of rounds, times the anchor pipeline and
``oom_sources.collect(['journal'])`` (which lists the boots and streams `journalctl -o short-unix
-b BOOT _TRANSPORT=kernel` for each, the way the module does, pointed at that directory), prints best/median/worst wall time, the ratio
of the medians and checks that every kill was found.
Needs journalctl and systemd-journal-remote (Debian: apt-get install systemd-journal-remote).
Usage: bench/oom_facts_journal.py [--entries 200000] [--rounds 5] [--python PATH]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from collection_env import collection_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REMOTE = ('/lib/systemd/systemd-journal-remote', '/usr/lib/systemd/systemd-journal-remote')
NOISE = [
    'EXT4-fs (sda1): re-mounted. Opts: errors=remount-ro',
    'docker0: port 2(veth{n:07x}) entered blocking state',
    'IPv6: ADDRCONF(NETDEV_CHANGE): veth{n:07x}: link becomes ready',
    'TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.  Check SNMP counters.',
    'audit: type=1400 audit(1700000000.{n}:1): apparmor="DENIED" operation="open" profile="snap.lxd.daemon"',
    'nf_conntrack: nf_conntrack: table full, dropping packet',
]
REPORT = [
    'java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0',
    'CPU: 1 PID: {pid} Comm: java Not tainted 6.1.0-13-amd64 #1 Debian 6.1.55-1',
    'memory: usage 524288kB, limit 524288kB, failcnt 77',
    'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/app,'
    'task_memcg=/app,task=java,pid={pid},uid=0',
    'Memory cgroup out of memory: Killed process {pid} (java) total-vm:1048576kB, anon-rss:520000kB, '
    'file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1100kB oom_score_adj:0',
]


def export_stream(path, entries, every):
    """A journal export file of `entries` kernel messages of this boot; returns the kills written."""
    with open('/proc/sys/kernel/random/boot_id') as f:
        boot = f.read().strip().replace('-', '')
    now = int(time.time() * 1000000) - entries * 1000
    kills = 0
    n = 0
    with open(path, 'w') as out:
        while n < entries:
            if n % every == every // 2:
                kills += 1
                lines = [line.format(pid=100000 + kills) for line in REPORT]
            else:
                lines = [NOISE[n % len(NOISE)].format(n=n)]
            for message in lines:
                n += 1
                out.write('__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n_TRANSPORT=kernel\n'
                          'SYSLOG_IDENTIFIER=kernel\nPRIORITY=4\n_HOSTNAME=bench\nMESSAGE=%s\n\n'
                          % (now + n * 1000, 1000000 + n * 1000, boot, message))
    return kills


def timed(argv, shell=False, env=None):
    started = time.time()
    out = subprocess.run(argv, shell=shell, env=env, stdout=subprocess.PIPE, check=True).stdout
    return time.time() - started, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    ap.add_argument('--entries', type=int, default=200000)
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--python', default=sys.executable)
    args = ap.parse_args()
    remote = next((p for p in REMOTE if os.path.exists(p)), None)
    if remote is None or shutil.which('journalctl') is None:
        print('skipped: needs journalctl and systemd-journal-remote')
        return 0
    work = tempfile.mkdtemp(prefix='oom_facts_journal.', dir='/var/tmp')
    try:
        export = os.path.join(work, 'kernel.export')
        kills = export_stream(export, args.entries, every=400)
        journal_dir = os.path.join(work, 'journal')
        os.mkdir(journal_dir)
        subprocess.run([remote, '--output=' + os.path.join(journal_dir, 'bench.journal'), export], check=True,
                       stderr=subprocess.DEVNULL)
        env = collection_env(work, args.python)
        code = ('import subprocess, sys\n'
                'from ansible_collections.oomguard.memory.plugins.module_utils import oom_sources\n'
                'popen = lambda argv: subprocess.Popen(argv[:1] + ["--directory=" + sys.argv[1]] + argv[1:],\n'
                '                                      stdout=subprocess.PIPE)\n'
                'def run(argv):\n'
                '    p = subprocess.run(argv[:1] + ["--directory=" + sys.argv[1]] + argv[1:], stdout=subprocess.PIPE,\n'
                '                       universal_newlines=True)\n'
                '    return p.returncode, p.stdout, ""\n'
                'oom_sources._which = lambda name: "/usr/bin/" + name\n'
                'events, read = oom_sources.collect(["journal"], run, sys.stderr.write, popen=popen)\n'
                'print(sum(len(e["victims"]) for e in events))\n')
        anchor = "journalctl --directory=%s -k -o cat | LC_ALL=C grep -c 'Killed process'" % journal_dir
        greps, ours = [], []
        found = counted = None
        for _round in range(args.rounds):
            wall, out = timed(anchor, shell=True)
            greps.append(wall)
            counted = int(out)
            wall, out = timed([args.python, '-c', code, journal_dir], env=env)
            ours.append(wall)
            found = int(out)
        print('python: %s; %d kernel entries, %d kills' % (args.python, args.entries, kills))
        for name, runs in (('journalctl -k -o cat | grep -c', greps), ("collect(['journal'])", ours)):
            runs = sorted(runs)
            print('%-34s best %.3f  median %.3f  worst %.3f' % (name, runs[0], runs[len(runs) // 2], runs[-1]))
        median = sorted(ours)[len(ours) // 2] / sorted(greps)[len(greps) // 2]
        print('ratio of medians %.2f (target <= 2), best %.2f' % (median, min(ours) / min(greps)))
        verdict = 'OK' if found == kills == counted else 'WRONG'
        print('kills: grep %d, found %d, written %d: %s' % (counted, found, kills, verdict))
        return 0 if found == kills == counted else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
