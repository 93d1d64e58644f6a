"""Render the monitor role's alert rules template with the role's defaults, as the role does.

Usage: render_rules.py OUT [VAR=VALUE ...]. The role deploys the template with the << >>
delimiters (roles/monitor/tasks/alerts.yml); this does the same with plain Jinja2 so promtool can
check and test the file without running Ansible.
"""
import os
import sys

import jinja2
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(ROOT, 'roles', 'monitor')


def render(overrides=None):
    with open(os.path.join(ROLE, 'defaults', 'main.yml')) as handle:
        variables = {k: v for k, v in yaml.safe_load(handle).items() if k.startswith('monitor_alert_')}
    variables.update(overrides or {})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROLE, 'templates')),
                             variable_start_string='<<', variable_end_string='>>',
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template('oomguard-alerts.yml.j2').render(ansible_managed='Rendered from the oomguard.memory monitor role', **variables)


def main(argv):
    overrides = dict(arg.split('=', 1) for arg in argv[1:])
    os.makedirs(os.path.dirname(os.path.abspath(argv[0])), exist_ok=True)
    with open(argv[0], 'w') as handle:
        handle.write(render(overrides))


if __name__ == '__main__':
    main(sys.argv[1:])
