"""Benchmark: playbooks/oom_report.yml on a container fleet against default fact gathering, and
the report's aggregation step alone for a large recorded fleet.

Part 1 (needs root and podman; run it under the host lock, see tests/README.md): starts HOSTS
plain containers (not systemd: `sleep infinity`) from the testbed image of tests/testbed
(built locally by systemd-container.sh, no registry), reached through the
containers.podman.podman connection with pipelining (no network). For each of the forks values,
alternating within each round, it times
  - the anchor: `ansible all -m ansible.builtin.setup` (default fact gathering), and
  - the report: `ansible-playbook playbooks/oom_report.yml` (oom_facts + memory_audit on every
    host, the terminal summary, report.json/report.md/junit.xml, gate never),
and prints the median wall time, its spread (min-max), and the CPU seconds per host of the whole
process tree (a fairer "cost" on a shared machine). The containers are removed at the end, also
when interrupted.

Part 2: records the real oom_facts and memory_audit results of one container and of this machine,
then builds AGGREGATE host entries from them (10% unreachable, 5% failed), and times, in a fresh
interpreter, host_entry + build_report + rendering and writing the three files; peak RSS of that
process is the controller memory. Then the merge step end to end: `ansible-playbook
playbooks/oom_report_merge.yml` over 10 slice report.json files holding the same hosts.

    python bench/oom_report.py [--hosts 50] [--rounds 3] [--forks 5,20,50] [--aggregate 10000]
                               [--skip-fleet] [--skip-aggregate] [--state DIR]

--state DIR keeps the fleet timings and the recorded results between invocations: on a shared
machine, run one round at a time under the host lock (`flock /tmp/oomguard-host.lock python
bench/oom_report.py --rounds 1 --skip-aggregate --state DIR`, three times), then the aggregation
without the lock (`--skip-fleet --state DIR`); each invocation prints the medians over all rounds
so far. --local replaces the containers by HOSTS local-connection aliases of this machine (no
containers, no lock: the play only reads), for a quick look at the same comparison.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
TESTBED = os.path.join(ROOT, 'tests', 'testbed')
CONTAINERS_CONF = os.path.join(TESTBED, 'containers.conf')


def env(**extra):
    values = dict(os.environ)
    values.setdefault('ANSIBLE_COLLECTIONS_PATH', os.path.join(ROOT, '.collections'))
    values.update(ANSIBLE_PYTHON_INTERPRETER='/usr/bin/python3', ANSIBLE_LOCALHOST_WARNING='false',
                  ANSIBLE_INVENTORY_UNPARSED_WARNING='false', ANSIBLE_NOCOLOR='1', ANSIBLE_PIPELINING='true',
                  ANSIBLE_HOST_KEY_CHECKING='false', CONTAINERS_CONF=CONTAINERS_CONF,
                  ANSIBLE_DEPRECATION_WARNINGS='false')
    values.update(extra)
    return values


def timed(argv, environ=None, cwd=ROOT):
    """(wall seconds, CPU seconds of the process tree, peak RSS MiB of its largest process, rc, output)."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=environ or env(), cwd=cwd)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, rc, out.decode('utf-8', 'replace')


def podman(*args, check=True):
    proc = subprocess.run(['podman'] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=env(), universal_newlines=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError('podman %s failed: %s' % (' '.join(args[:3]), proc.stdout[-2000:]))
    return proc.stdout.strip()


def image():
    proc = subprocess.run([os.path.join(TESTBED, 'systemd-container.sh'), 'build'], stdout=subprocess.PIPE,
                          env=env(), universal_newlines=True, check=True)
    return proc.stdout.strip().splitlines()[-1]


def summary(values):
    return '%.2f (%.2f-%.2f)' % (statistics.median(values), min(values), max(values))


def fleet_bench(args, tmp):
    prefix = 'oomguard-bench-%d-' % os.getpid()
    names = ['%s%02d' % (prefix, i) for i in range(args.hosts)]
    inventory = os.path.join(tmp, 'fleet.ini')
    with open(inventory, 'w') as handle:
        handle.write('[fleet]\n' + ''.join('%s\n' % n for n in names))
        if args.local:
            # every name is this machine: no containers, no lock needed (the play only reads)
            handle.write('[fleet:vars]\nansible_connection=local\noom_report_host_name={{ inventory_hostname }}\n')
        else:
            handle.write('[fleet:vars]\nansible_connection=containers.podman.podman\n'
                         'ansible_python_interpreter=/usr/bin/python3\n')
    if args.local:
        names = []
    try:
        started = time.monotonic()
        if not args.local:
            ref = image()
            for name in names:
                podman('run', '-d', '--name', name, '--network', 'none', '--entrypoint', 'sleep', ref, 'infinity')
            print('started %d containers from %s in %.1f s' % (len(names), ref, time.monotonic() - started))
        results = {}
        saved = os.path.join(args.state, 'fleet.json') if args.state else None
        if saved and os.path.exists(saved):
            with open(saved) as handle:
                for key, values in json.load(handle).items():
                    label, forks = key.split(':')
                    results[(label, int(forks))] = [tuple(v) for v in values]
        done = len(results.get(('setup', args.forks[0]), []))
        for round_no in range(done, done + args.rounds):
            for forks in args.forks:
                runs = [('setup', [os.path.join(BIN, 'ansible'), 'all', '-i', inventory, '-f', str(forks),
                                   '-m', 'ansible.builtin.setup']),
                        ('report', [os.path.join(BIN, 'ansible-playbook'), '-i', inventory, '-f', str(forks),
                                    os.path.join(ROOT, 'playbooks', 'oom_report.yml'), '-e', 'oom_report_fail_on=never',
                                    '-e', 'oom_report_dir=%s' % os.path.join(tmp, 'report-%d' % forks)])]
                if round_no % 2:
                    runs.reverse()
                for label, argv in runs:
                    wall, cpu, _rss, rc, out = timed(argv)
                    if rc != 0:
                        raise RuntimeError('%s with forks %d failed (rc %d):\n%s' % (label, forks, rc, out[-3000:]))
                    results.setdefault((label, forks), []).append((wall, cpu))
        with open(os.path.join(tmp, 'report-%d' % args.forks[0], 'report.json')) as handle:
            report = json.load(handle)
        assert report['fleet']['hosts'] == args.hosts and report['fleet']['ok'] == args.hosts, report['fleet']
        recorded = record(tmp, names[0] if names else None)
        if saved:
            with open(saved, 'w') as handle:
                json.dump(dict(('%s:%d' % key, values) for key, values in results.items()), handle)
            with open(os.path.join(args.state, 'recorded.json'), 'w') as handle:
                json.dump(recorded, handle)
        rounds = len(results[('setup', args.forks[0])])
        print('\n%d %s, %d round(s); wall seconds median (min-max), CPU seconds of the process tree per host'
              % (args.hosts, 'local-connection aliases of this machine' if args.local else 'containers', rounds))
        print('%-6s | %-24s | %-24s | %-9s | %-9s | %s' % ('forks', 'setup wall', 'oom_report wall', 'setup cpu',
                                                           'report cpu', 'report/setup (wall, cpu)'))
        for forks in args.forks:
            setup, rep = results[('setup', forks)], results[('report', forks)]
            sw, rw = statistics.median(w for w, _c in setup), statistics.median(w for w, _c in rep)
            sc, rc = statistics.median(c for _w, c in setup) / args.hosts, statistics.median(c for _w, c in rep) / args.hosts
            print('%-6d | %-24s | %-24s | %-9.3f | %-9.3f | %.2fx, %.2fx' % (
                forks, summary([w for w, _c in setup]), summary([w for w, _c in rep]), sc, rc, rw / sw, rc / sc))
        return recorded
    finally:
        for name in names:
            podman('rm', '-f', '-t', '0', name, check=False)
        if names:
            print('removed the containers')


RECORD_PLAY = '''
- hosts: all
  gather_facts: false
  tasks:
    - oomguard.memory.oom_facts: {top: 5, max_events: 20}
      register: facts
    - oomguard.memory.memory_audit: {oom_summary: "{{ facts.ansible_facts.oom.summary }}"}
      register: audit
    - ansible.builtin.copy:
        content: "{{ {'facts': facts, 'audit': audit} | to_json }}"
        dest: "%s/recorded-{{ inventory_hostname }}.json"
      delegate_to: localhost
      vars: {ansible_connection: local}
'''


def record(tmp, container):
    """Real results of one container (when one runs) and of this machine, as the play registers them."""
    inventory = os.path.join(tmp, 'record.ini')
    with open(inventory, 'w') as handle:
        handle.write('localhost ansible_connection=local\n')
        if container:
            handle.write('%s ansible_connection=containers.podman.podman\n' % container)
    play = os.path.join(tmp, 'record.yml')
    with open(play, 'w') as handle:
        handle.write(RECORD_PLAY % tmp)
    _w, _c, _r, rc, out = timed([os.path.join(BIN, 'ansible-playbook'), '-i', inventory, play])
    if rc != 0:
        raise RuntimeError('recording failed:\n%s' % out[-3000:])
    recorded = []
    for name in sorted(os.listdir(tmp)):
        if name.startswith('recorded-'):
            with open(os.path.join(tmp, name)) as handle:
                recorded.append(json.load(handle))
    return recorded


AGGREGATE = r'''
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.oomguard.memory.plugins.plugin_utils import report as rep
with open(sys.argv[2]) as handle:
    recorded = json.load(handle)
count, out = int(sys.argv[3]), sys.argv[4]
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
hosts = []
for i in range(count):
    sample = recorded[i % len(recorded)]
    if i % 10 == 9:
        hosts.append(('host%05d' % i, {'unreachable': True, 'msg': 'Failed to connect to the host via ssh'}, None, None))
    elif i % 20 == 3:
        hosts.append(('host%05d' % i, None, None, {'task': 'Gather OOM facts', 'msg': 'cannot read /dev/kmsg'}))
    else:
        hosts.append(('host%05d' % i, sample['facts'], sample['audit'], None))
start = time.perf_counter()
entries = [rep.host_entry(*h) for h in hosts]
report = rep.build_report(entries, 'kills')
paths = rep.write_files(out, report)
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
# the slices for the merge step, written here so the benchmark process itself stays small
# (a forked child counts its parent's memory in its peak RSS until it execs)
step = len(report['hosts']) // 10
for index in range(10):
    part = dict(report, hosts=report['hosts'][index * step:(index + 1) * step if index < 9 else None])
    folder = '%s-slice%d' % (out, index)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'report.json'), 'w') as handle:
        json.dump(part, handle)
print(json.dumps({'seconds': elapsed, 'peak_rss_mib': peak, 'rss_before_mib': base_rss,
                  'failing': len(report['fleet']['failing']), 'hosts': len(report['hosts'])}))
'''


def aggregate_bench(args, tmp, recorded):
    if not recorded and args.state and os.path.exists(os.path.join(args.state, 'recorded.json')):
        with open(os.path.join(args.state, 'recorded.json')) as handle:
            recorded = json.load(handle)
    recorded = recorded or record(tmp, None)
    data = os.path.join(tmp, 'recorded.json')
    with open(data, 'w') as handle:
        json.dump(recorded, handle)
    per_host = sum(len(json.dumps(r)) for r in recorded) / float(len(recorded))
    src = os.path.join(ROOT, '.cache', 'src')
    if not os.path.isdir(os.path.join(src, 'ansible_collections')):
        os.makedirs(os.path.join(src, 'ansible_collections', 'oomguard'), exist_ok=True)
        os.symlink(ROOT, os.path.join(src, 'ansible_collections', 'oomguard', 'memory'))
    script = os.path.join(tmp, 'aggregate.py')
    with open(script, 'w') as handle:
        handle.write(AGGREGATE)
    print('\naggregation of %d hosts (from %d recorded real results, %.1f kB each as registered; 10%% unreachable, '
          '5%% failed), %d round(s):' % (args.aggregate, len(recorded), per_host / 1024, args.rounds))
    times, peaks = [], []
    for _round in range(args.rounds):
        _w, _c, _r, rc, out = timed([sys.executable, script, src, data, str(args.aggregate), os.path.join(tmp, 'agg')])
        if rc != 0:
            raise RuntimeError(out)
        result = json.loads(out.strip().splitlines()[-1])
        times.append(result['seconds'])
        peaks.append(result['peak_rss_mib'])
    sizes = dict((n, os.path.getsize(os.path.join(tmp, 'agg', n)) / 1048576.0) for n in os.listdir(os.path.join(tmp, 'agg')))
    print('  host entries + report + 3 files: %s s; peak RSS %s MiB (the interpreter with the recorded input '
          'already loaded: %.1f MiB); files %s' % (summary(times), summary(peaks), result['rss_before_mib'],
                                                   ', '.join('%s %.1f MiB' % kv for kv in sorted(sizes.items()))))
    # merge step end to end: the 10 slices the aggregation process wrote
    merge_times, merge_rss = [], []
    anchor_times, anchor_rss = [], []
    noop = os.path.join(tmp, 'noop.yml')
    with open(noop, 'w') as handle:
        handle.write('- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug: {msg: x}\n')
    for _round in range(args.rounds):
        wall, _cpu, rss, rc, out = timed([os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                                          os.path.join(ROOT, 'playbooks', 'oom_report_merge.yml'),
                                          '-e', json.dumps({'oom_report_merge': [os.path.join(tmp, 'agg-slice*')],
                                                            'oom_report_dir': os.path.join(tmp, 'merged'),
                                                            'oom_report_fail_on': 'never'})])
        if rc != 0:
            raise RuntimeError(out[-3000:])
        merge_times.append(wall)
        merge_rss.append(rss)
        wall, _cpu, rss, rc, _out = timed([os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', noop])
        anchor_times.append(wall)
        anchor_rss.append(rss)
    with open(os.path.join(tmp, 'merged', 'report.json')) as handle:
        assert len(json.load(handle)['hosts']) == args.aggregate
    print('  merge playbook over 10 slice report.json files (%d hosts): %s s wall, peak RSS %s MiB; a one-task '
          'debug playbook (the floor): %s s, %s MiB'
          % (args.aggregate, summary(merge_times), summary(merge_rss), summary(anchor_times), summary(anchor_rss)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=50)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--forks', default='5,20,50')
    parser.add_argument('--aggregate', type=int, default=10000)
    parser.add_argument('--skip-fleet', action='store_true')
    parser.add_argument('--local', action='store_true',
                        help='the fleet is HOSTS local-connection aliases of this machine instead of containers')
    parser.add_argument('--skip-aggregate', action='store_true')
    parser.add_argument('--state', help='keep timings and recorded results here between invocations')
    args = parser.parse_args()
    args.forks = [int(f) for f in args.forks.split(',')]
    if args.state:
        args.state = os.path.abspath(args.state)
        os.makedirs(args.state, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='oomguard-bench-report-')
    try:
        recorded = None
        if not args.skip_fleet:
            if not args.local and (os.geteuid() != 0 or not shutil.which('podman')):
                sys.exit('the fleet part needs root and podman (tests/testbed/README.md); use --skip-fleet')
            recorded = fleet_bench(args, tmp)
        if not args.skip_aggregate:
            aggregate_bench(args, tmp, recorded)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
