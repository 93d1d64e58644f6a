"""Every role's README.md carries its variables as meta/argument_specs.yml states them
(scripts/role_readme.py), and the check notices drift, a missing README and a role without specs."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, 'scripts', 'role_readme.py')
SPECS = '''---
argument_specs:
  main:
    short_description: A test role
    description:
      - Does C(nothing) with O(demo_items[].name).
    options:
      demo_items:
        description: Things.
        type: list
        elements: dict
        default: []
        options:
          name:
            description: A name.
            type: str
            required: true
      demo_state:
        description: V(present) or V(absent).
        type: str
        choices: [present, absent]
        default: present
'''


def role_readme(*args):
    return subprocess.run([sys.executable, SCRIPT] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)


def demo_root(tmp_path, specs=SPECS):
    meta = tmp_path / 'roles' / 'demo' / 'meta'
    meta.mkdir(parents=True)
    (meta / 'argument_specs.yml').write_text(specs)
    return str(tmp_path)


def test_the_roles_of_this_collection_are_in_step():
    result = role_readme('--check')
    assert result.returncode == 0, result.stdout


def test_a_new_role_gets_a_readme_and_then_passes_the_check(tmp_path):
    root = demo_root(tmp_path)
    missing = role_readme('--check', '--root', root)
    assert missing.returncode == 1 and 'roles/demo/README.md' in missing.stdout
    assert role_readme('--root', root).returncode == 0
    text = (tmp_path / 'roles' / 'demo' / 'README.md').read_text()
    assert '# Role `oomguard.memory.demo`' in text
    assert 'Does `nothing` with `demo_items[].name`.' in text
    assert '| `demo_items` | list of dict | `[]` | Things. |' in text
    assert '| `demo_items[].name` | str |  | A name. Required. |' in text
    assert '| `demo_state` | str | `present` | `present` or `absent`. Choices: `present`, `absent`. |' in text
    assert role_readme('--check', '--root', root).returncode == 0


def test_drift_fails_the_check_and_hand_written_text_survives_a_rewrite(tmp_path):
    root = demo_root(tmp_path)
    role_readme('--root', root)
    readme = tmp_path / 'roles' / 'demo' / 'README.md'
    readme.write_text('# Demo\n\nWritten by hand.\n\n' + readme.read_text().split('## Variables\n', 1)[1])
    assert role_readme('--check', '--root', root).returncode == 0
    specs = tmp_path / 'roles' / 'demo' / 'meta' / 'argument_specs.yml'
    specs.write_text(SPECS.replace('default: present', 'default: absent'))
    drift = role_readme('--check', '--root', root)
    assert drift.returncode == 1 and 'roles/demo/README.md' in drift.stdout
    role_readme('--root', root)
    assert readme.read_text().startswith('# Demo\n\nWritten by hand.\n')
    assert '| `demo_state` | str | `absent` |' in readme.read_text()


def test_a_role_without_argument_specs_is_an_error(tmp_path):
    root = demo_root(tmp_path)
    (tmp_path / 'roles' / 'bare' / 'tasks').mkdir(parents=True)
    result = role_readme('--check', '--root', root)
    assert result.returncode == 1 and 'roles without meta/argument_specs.yml: bare' in result.stdout


def test_a_readme_without_the_markers_is_an_error(tmp_path):
    root = demo_root(tmp_path)
    (tmp_path / 'roles' / 'demo' / 'README.md').write_text('# Demo\n')
    result = role_readme('--check', '--root', root)
    assert result.returncode == 1 and 'has no generated part' in result.stdout
