"""Rules of the test suite itself, checked on its source so that they stay true as tests are added.

- pytest-ansible (end of life December 2026) is reached through one fixture only, ``ansible`` in
  tests/integration/conftest.py; replacing it means rewriting that fixture and its harness.
- Test helpers are imported by name (tests/unit/faketree.py), never loaded from a path through
  importlib.
"""
import ast
import os

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTEST_ANSIBLE_FIXTURES = {'localhost', 'ansible_adhoc', 'ansible_module', 'ansible_facts', 'ansible_module_cls'}
THE_ONE_SEAM = (os.path.join('integration', 'conftest.py'), 'ansible')


def python_files():
    for directory, _dirs, names in os.walk(TESTS):
        for name in sorted(names):
            if name.endswith('.py'):
                path = os.path.join(directory, name)
                with open(path) as handle:
                    yield os.path.relpath(path, TESTS), ast.parse(handle.read(), path)


def fixture_users(module):
    """Functions pytest may call with fixtures: module-level ones and methods of Test classes."""
    for node in module.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith('Test'):
            yield from node.body
        yield node


def test_pytest_ansible_is_behind_one_fixture():
    users = []
    for rel, module in python_files():
        for node in fixture_users(module):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if {arg.arg for arg in node.args.args} & PYTEST_ANSIBLE_FIXTURES:
                    users.append((rel, node.name))
    assert users == [THE_ONE_SEAM]


def test_no_helper_is_loaded_through_importlib():
    found = []
    for rel, module in python_files():
        for node in ast.walk(module):
            if isinstance(node, ast.Attribute) and node.attr in ('spec_from_file_location', 'exec_module'):
                found.append((rel, node.attr))
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] + [getattr(node, 'module', None) or '']
                found += [(rel, name) for name in names if name.startswith('importlib')]
    assert found == []
