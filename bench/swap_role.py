"""Benchmark: the swap role's no-change run against the floor of Ansible itself.

Side by side in one run on localhost: a one-task ``ansible.builtin.ping`` playbook without fact
gathering (the floor), and the oomguard.memory.swap role on a host that already has what it asks
for (a small swap file under /var/tmp, created here first). Each is run REPS times, alternating,
and the medians are printed with their ratio. Target: the role at most 2x the floor.

Uses the collection installed in $ANSIBLE_COLLECTIONS_PATH (``make install`` puts it in .collections).
Changes the host while it runs (a swap file, /etc/fstab, vm.swappiness and the role's sysctl.d
file) and puts everything back at the end, also when interrupted.

    ANSIBLE_COLLECTIONS_PATH=/path/to/coll python bench/swap_role.py [REPS]
"""
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
FSTAB = '/etc/fstab'
LIVE = '/proc/sys/vm/swappiness'
OURS = '/etc/sysctl.d/90-oomguard-swappiness.conf'
TARGET = 2.0


def env():
    values = dict(os.environ)
    values.setdefault('ANSIBLE_COLLECTIONS_PATH', os.path.join(ROOT, '.collections'))
    values.setdefault('ANSIBLE_PYTHON_INTERPRETER', '/usr/bin/python3')
    values.update(ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
                  ANSIBLE_NOCOLOR='1')
    return values


def read(path, mode='r'):
    if not os.path.exists(path):
        return None
    with open(path, mode) as handle:
        return handle.read()


def run(playbook, extra_vars=None):
    """Run a playbook on localhost; return (seconds, changed count)."""
    argv = [os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', playbook]
    if extra_vars:
        argv += ['-e', json.dumps(extra_vars)]
    start = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=env(), check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit('%s failed:\n%s' % (playbook, proc.stdout[-3000:]))
    changed = int(proc.stdout.rsplit('changed=', 1)[1].split()[0])
    return elapsed, changed


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    if os.geteuid() != 0:
        raise SystemExit('run as root: the role manages swap')
    work = tempfile.mkdtemp(prefix='oomguard-bench-swap-', dir='/var/tmp')
    saved = {'fstab': read(FSTAB, 'rb'), 'swappiness': int(read(LIVE)), 'ours': read(OURS)}
    swap = os.path.join(work, 'swapfile')
    variables = {'swap_file_path': swap, 'swap_size': '32M', 'swap_swappiness': saved['swappiness']}
    ping = os.path.join(work, 'ping.yml')
    role = os.path.join(work, 'role.yml')
    with open(ping, 'w') as handle:
        handle.write('- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n')
    with open(role, 'w') as handle:
        handle.write('- hosts: localhost\n  gather_facts: false\n  roles:\n    - oomguard.memory.swap\n')
    try:
        changed = run(role, variables)[1]
        print('setup: converged the role once (%d changed): %s, 32M' % (changed, swap))
        run(ping)  # warm caches for both
        times = {'ping': [], 'role': []}
        for _rep in range(reps):
            times['ping'].append(run(ping)[0])
            elapsed, changed = run(role, variables)
            if changed:
                raise SystemExit('the no-change run of the role changed %d things' % changed)
            times['role'].append(elapsed)
        floor, ours = statistics.median(times['ping']), statistics.median(times['role'])
        print('runs per case: %d (medians; all times in seconds)' % reps)
        print('ping floor (1 task, gather_facts: false): %.2f  [%s]'
              % (floor, ' '.join('%.2f' % t for t in times['ping'])))
        print('swap role, no change:                     %.2f  [%s]'
              % (ours, ' '.join('%.2f' % t for t in times['role'])))
        print('ratio role / floor: %.2fx (target <= %.1fx): %s'
              % (ours / floor, TARGET, 'OK' if ours / floor <= TARGET else 'OVER TARGET'))
    finally:
        subprocess.run(['swapoff', swap], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(work, ignore_errors=True)
        if read(FSTAB, 'rb') != saved['fstab']:
            with open(FSTAB, 'wb') as handle:
                handle.write(saved['fstab'])
        with open(LIVE, 'w') as handle:
            handle.write('%d\n' % saved['swappiness'])
        if saved['ours'] is None:
            if os.path.exists(OURS):
                os.unlink(OURS)
        else:
            with open(OURS, 'w') as handle:
                handle.write(saved['ours'])


if __name__ == '__main__':
    main()
