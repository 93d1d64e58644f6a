"""The monitor role's static parts: the code it installs next to the collector, and its alert
rules against their promtool tests."""
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(ROOT, 'roles', 'monitor')
MODULE_UTILS = os.path.join(ROOT, 'plugins', 'module_utils')
TESTS = os.path.join(ROOT, 'tests', 'promtool', 'oomguard-alerts.test.yml')
sys.path.insert(0, os.path.join(ROOT, 'tests', 'promtool'))
import render_rules  # noqa: E402  pylint: disable=wrong-import-position

_IMPORT_RE = re.compile(r'^from ansible_collections\.oomguard\.memory\.plugins\.module_utils(?:\.(\w+))? import '
                        r'(?:\(([^)]*)\)|([\w, ]+)$)', re.M)


def imports_of(name):
    with open(os.path.join(MODULE_UTILS, name + '.py')) as handle:
        text = handle.read()
    found = set()
    for module, group, names in _IMPORT_RE.findall(text):
        found.update([module] if module else [n.strip() for n in (group or names).split(',') if n.strip()])
    return found


def test_the_collector_is_installed_with_every_module_util_it_imports():
    with open(os.path.join(ROLE, 'vars', 'main.yml')) as handle:
        listed = {name[:-3] for name in yaml.safe_load(handle)['__monitor_module_utils']}
    needed, todo = set(), ['oom_metrics']
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(imports_of(name))
    assert listed == needed


def alerts_of(text):
    return [rule['alert'] for group in yaml.safe_load(text)['groups'] for rule in group['rules'] if 'alert' in rule]


def test_every_alert_has_a_firing_and_a_quiet_promtool_case():
    alerts = alerts_of(render_rules.render())
    with open(TESTS) as handle:
        cases = [case for test in yaml.safe_load(handle)['tests'] for case in test['alert_rule_test']]
    firing = {c['alertname'] for c in cases if c['exp_alerts']}
    quiet = {c['alertname'] for c in cases if not c['exp_alerts']}
    assert len(alerts) == 8
    assert set(alerts) <= firing, 'alerts without a firing case: %s' % (set(alerts) - firing)
    assert set(alerts) <= quiet, 'alerts without a quiet case: %s' % (set(alerts) - quiet)


@pytest.mark.skipif(shutil.which('promtool') is None, reason='promtool is not installed (make promtool installs it)')
@pytest.mark.parametrize('overrides, passes', [
    ({}, True),
    ({'monitor_alert_cgroup_usage_ratio': '0.99'}, False),
    ({'monitor_alert_oom_window': '1m'}, False),
    ({'monitor_alert_stale_seconds': '900'}, False),
])
def test_the_promtool_tests_fail_on_a_changed_rule(tmp_path, overrides, passes):
    rules = tmp_path / 'build' / 'promtool' / 'oomguard-alerts.yml'
    rules.parent.mkdir(parents=True)
    rules.write_text(render_rules.render(overrides))
    tests = tmp_path / 'tests' / 'promtool' / 'oomguard-alerts.test.yml'
    tests.parent.mkdir(parents=True)
    shutil.copy(TESTS, str(tests))
    proc = subprocess.run(['promtool', 'test', 'rules', str(tests)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    assert (proc.returncode == 0) == passes, proc.stdout[-2000:]
