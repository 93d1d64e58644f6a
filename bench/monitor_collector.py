# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: one run of the monitor role's collector on a host with a 100 MiB kernel log, after
its first run, next to the floor (the interpreter starting and exiting) and a naive collector (a
`grep -c 'Killed process'` over the whole log each run) in the same rounds.

Writes a kern.log like bench/oom_facts.py does (noise and 1,000 OOM reports over 200 days),
installs the collector the way the role lays it out (tests/promtool/collect_here.py), runs it
once (the first run reads the whole log), then per round appends a minute's worth of log lines
with one new OOM report and measures each command: wall time and peak RSS (median, best, worst:
other work on the machine shows as spread). Checks that each round counted exactly one new kill.
Needs GNU time (/usr/bin/time, Debian package time).
Usage: bench/monitor_collector.py [--size 100M] [--rounds 9] [--python /usr/bin/python3]
Targets: collector run under 100 ms and under 32 MiB RSS.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'bench'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'promtool'))
from oom_facts import generate, parse_size  # noqa: E402  pylint: disable=wrong-import-position
from collect_here import install  # noqa: E402  pylint: disable=wrong-import-position

REPORT = ['{name} invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0',
          'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/system.slice/bench.service,'
          'task_memcg=/system.slice/bench.service,task={name},pid={pid},uid=0',
          'Memory cgroup out of memory: Killed process {pid} ({name}) total-vm:812340kB, anon-rss:524288kB, file-rss:0kB, '
          'shmem-rss:0kB, UID:0 pgtables:1200kB oom_score_adj:0']


def append_minute(log, round_no):
    """About a minute of a busy host's kernel log: 200 noise lines and one OOM report, stamped now."""
    prefix = time.strftime('%b %e %H:%M:%S ', time.localtime()) + 'web-07 kernel: [%12.6f] '
    up = time.monotonic()
    lines = [prefix % up + 'nf_conntrack: nf_conntrack: table full, dropping packet' for _line in range(200)]
    lines += [prefix % up + l.format(name='benchhog', pid=900000 + round_no) for l in REPORT]
    with open(log, 'a') as handle:
        handle.write('\n'.join(lines) + '\n')


def run_measured(argv):
    """Wall time (s) and peak RSS (KiB) of one command, exit code. The RSS comes from GNU time,
    whose own small process forks the command: a child forked from this Python process would
    count our pages until its exec."""
    started = time.time()
    # stdout is a pipe, not /dev/null: GNU grep stops at its first hit when its output goes nowhere
    proc = subprocess.run(['/usr/bin/time', '-f', '%M'] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=dict(os.environ, LC_ALL='C'), universal_newlines=True, check=False)
    wall = time.time() - started
    return wall, int(proc.stderr.strip().splitlines()[-1]), proc.returncode


def kills(textfile):
    with open(textfile) as handle:
        return sum(float(l.rsplit(' ', 1)[1]) for l in handle if l.startswith('oomguard_oom_kills_total{'))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    ap.add_argument('--size', default='100M', help='kernel log size (default 100M)')
    ap.add_argument('--rounds', type=int, default=9, help='measured rounds after the first run (default 9)')
    ap.add_argument('--python', default='/usr/bin/python3', help='interpreter the role runs the collector with')
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix='monitor_bench.', dir='/var/tmp')
    try:
        log = os.path.join(work, 'kern.log')
        started = time.time()
        written, _events = generate(log, parse_size(args.size))
        print('generated %s: %.1f MiB in %.1fs' % (log, written / 1048576.0, time.time() - started))
        collector = install(os.path.join(work, 'install'))
        config = os.path.join(work, 'config.json')
        textfile = os.path.join(work, 'oomguard.prom')
        with open(config, 'w') as handle:
            json.dump({'textfile': textfile, 'state': os.path.join(work, 'state', 'state.json'), 'sources': [log],
                       'critical': [{'name': 'sshd', 'process': '^sshd$'}], 'cgroups': [{'name': '/', 'cgroup': '/'}]},
                      handle)
        commands = [
            ('collector (%s -I)' % args.python, [args.python, '-I', collector, '--config', config]),
            ('floor: %s -I -c pass' % args.python, [args.python, '-I', '-c', 'pass']),
            ("naive: grep -c 'Killed process' (whole log)", ['grep', '-c', 'Killed process', log]),
        ]
        subprocess.call(['cat', log], stdout=subprocess.DEVNULL)   # page cache warm for everyone
        first = run_measured(commands[0][1])
        assert first[2] == 0, 'the first run failed'
        print('first run (reads the whole log): %.3f s, peak RSS %.1f MiB' % (first[0], first[1] / 1024.0))
        results = {label: [] for label, _argv in commands}
        counted = kills(textfile)
        ok = True
        for round_no in range(args.rounds):
            append_minute(log, round_no)
            for label, argv in commands:
                wall, rss, rc = run_measured(argv)
                assert rc == 0, '%s failed' % label
                results[label].append((wall, rss))
            now = kills(textfile)
            ok = ok and now == counted + 1
            counted = now
        print('')
        print('%-52s %26s %14s' % ('command (%d rounds)' % args.rounds, 'wall ms median/best/worst', 'peak RSS MiB'))
        for label, _argv in commands:
            walls = sorted(r[0] * 1000 for r in results[label])
            rss = sorted(r[1] / 1024.0 for r in results[label])
            print('%-52s %8.1f %7.1f %8.1f %14.1f' % (label, walls[len(walls) // 2], walls[0], walls[-1], rss[-1]))
        print('')
        print('targets: collector median < 100 ms and peak RSS < 32 MiB per run')
        print('each round counted exactly its one new kill: %s' % ('OK' if ok else 'WRONG'))
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
