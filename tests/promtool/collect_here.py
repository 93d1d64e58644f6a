"""Install the monitor role's collector into a temporary directory the way the role lays it out
(the entry script, and the module_utils listed in roles/monitor/vars/main.yml under lib/), run
it once on this host and print the path of the oomguard.prom it wrote.

Usage: collect_here.py OUTDIR [PYTHON]. Only reads the host (the kernel log from where it is,
/proc, the cgroup files); the state, configuration and output stay under OUTDIR.
"""
import json
import os
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(ROOT, 'roles', 'monitor')
PACKAGE = os.path.join('ansible_collections', 'oomguard', 'memory', 'plugins', 'module_utils')


def install(target):
    """Lay out the collector under ``target`` like roles/monitor/tasks/collector.yml; return its path."""
    with open(os.path.join(ROLE, 'vars', 'main.yml')) as handle:
        files = yaml.safe_load(handle)['__monitor_module_utils']
    lib = os.path.join(target, 'lib')
    package = os.path.join(lib, PACKAGE)
    os.makedirs(package, exist_ok=True)
    parts = PACKAGE.split(os.sep)
    for depth in range(1, len(parts) + 1):
        open(os.path.join(lib, *parts[:depth], '__init__.py'), 'w').close()
    for name in files:
        shutil.copy(os.path.join(ROOT, 'plugins', 'module_utils', name), os.path.join(package, name))
    collector = os.path.join(target, 'oomguard-collector')
    shutil.copy(os.path.join(ROLE, 'files', 'oomguard-collector'), collector)
    return collector


def main(argv):
    out = os.path.abspath(argv[0])
    python = argv[1] if len(argv) > 1 else '/usr/bin/python3'
    shutil.rmtree(out, ignore_errors=True)
    collector = install(os.path.join(out, 'install'))
    config = {'textfile': os.path.join(out, 'oomguard.prom'), 'state': os.path.join(out, 'state', 'state.json'),
              'sources': ['auto'], 'critical': [{'name': 'sshd', 'process': '^sshd$'}],
              'cgroups': [{'name': '/', 'cgroup': '/'}]}
    with open(os.path.join(out, 'config.json'), 'w') as handle:
        json.dump(config, handle)
    proc = subprocess.run([python, '-I', collector, '--config', os.path.join(out, 'config.json')], check=False)
    if proc.returncode != 0 or not os.path.exists(config['textfile']):
        sys.stderr.write('the collector failed (rc=%d)\n' % proc.returncode)
        return 1
    print(config['textfile'])
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
