"""Keep every role's README.md in step with its meta/argument_specs.yml.

    python scripts/role_readme.py           write the generated part of roles/*/README.md (creating
                                            a README with a short frame for a role that has none)
    python scripts/role_readme.py --check   change nothing; exit 1 and name each role whose README is
                                            missing or whose generated part differs from its specs

The generated part is everything between the two marker lines below; the text around it is the
role author's and is never touched. meta/argument_specs.yml is the one source of a role's
variables: their description, type, default, choices and item keys are rendered from it.
Needs PyYAML (it comes with ansible-core); `make readmes` and `make lint` run it with the venv.
"""
import argparse
import glob
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = '<!-- BEGIN role variables: generated from meta/argument_specs.yml by scripts/role_readme.py -->'
END = '<!-- END role variables -->'

# Ansible's documentation markup, as Markdown.
MARKUP = [
    (re.compile(r'L\(([^)]*?),\s*([^)]*)\)'), r'[\1](\2)'),
    (re.compile(r'U\(([^)]*)\)'), r'<\1>'),
    (re.compile(r'I\(([^)]*)\)'), r'*\1*'),
    (re.compile(r'B\(([^)]*)\)'), r'**\1**'),
    (re.compile(r'\b(?:C|V|O|RV|E|M|P)\(([^)]*)\)'), r'`\1`'),
]


def markdown(text):
    text = ' '.join(str(text).split())
    for pattern, replacement in MARKUP:
        text = pattern.sub(replacement, text)
    return text.replace('|', '\\|')


def paragraphs(value):
    if value is None:
        return []
    return [markdown(p) for p in (value if isinstance(value, list) else [value])]


def literal(value):
    # A pipe ends a table cell even inside backticks; GitHub's tables take it escaped.
    text = (yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
            .replace('\n...', '').strip() if not isinstance(value, str) else value)
    return '`%s`' % text.replace('|', '\\|')


def type_of(spec):
    kind = spec.get('type', 'str')
    if kind == 'list' and spec.get('elements'):
        return 'list of %s' % spec['elements']
    return kind


def rows(options, prefix=''):
    """One table row per variable, then one per item key (``var[].key``) of list-of-dict variables."""
    for name in options:
        spec = options[name] or {}
        full = prefix + name
        notes = []
        if spec.get('required'):
            notes.append('Required.')
        if spec.get('choices'):
            notes.append('Choices: %s.' % ', '.join(literal(c) for c in spec['choices']))
        default = literal(spec['default']) if 'default' in spec else ''
        text = ' '.join(paragraphs(spec.get('description')) + notes)
        yield '| `%s` | %s | %s | %s |' % (full, type_of(spec), default, text)
        if spec.get('options'):
            sub = full + ('[].' if spec.get('type') == 'list' else '.')
            yield from rows(spec['options'], sub)


def generated(specs):
    lines = [BEGIN]
    entry_points = specs.get('argument_specs') or {}
    for entry, spec in entry_points.items():
        lines.append('')
        if len(entry_points) > 1 or entry != 'main':
            lines += ['### Entry point `%s`' % entry, '']
        for paragraph in paragraphs(spec.get('description')):
            lines += [paragraph, '']
        lines += ['| Variable | Type | Default | Description |', '|---|---|---|---|']
        lines += list(rows(spec.get('options') or {}))
    lines += ['', END]
    return '\n'.join(lines)


def frame(role, specs):
    """A README for a role that has none: title, summary, variables, a minimal play."""
    main = (specs.get('argument_specs') or {}).get('main') or {}
    return '\n'.join([
        '# Role `oomguard.memory.%s`' % role, '',
        markdown(main.get('short_description') or ''), '',
        '## Variables', '',
        generated(specs), '',
        '## Example', '',
        '```yaml',
        '- name: Apply %s' % role,
        '  hosts: all',
        '  gather_facts: false',
        '  roles:',
        '    - role: oomguard.memory.%s' % role,
        '```', '',
        'License: GPL-3.0-or-later.', ''])


def wanted(role_dir):
    """The README text this role should have, and what it has now (None when missing)."""
    role = os.path.basename(role_dir)
    with open(os.path.join(role_dir, 'meta', 'argument_specs.yml')) as handle:
        specs = yaml.safe_load(handle) or {}
    path = os.path.join(role_dir, 'README.md')
    current = None
    if os.path.exists(path):
        with open(path) as handle:
            current = handle.read()
    if current is None:
        return frame(role, specs), None
    start, end = current.find(BEGIN), current.find(END)
    if start < 0 or end < start:
        raise SystemExit('%s has no generated part; put the two marker lines of scripts/role_readme.py '
                         'where the variables belong' % os.path.relpath(path, ROOT))
    return current[:start] + generated(specs) + current[end + len(END):], current


def roles(root):
    return sorted(os.path.dirname(os.path.dirname(p))
                  for p in glob.glob(os.path.join(root, 'roles', '*', 'meta', 'argument_specs.yml')))


def drift(root=ROOT):
    """Relative README paths that are missing or differ from their argument specs."""
    stale = []
    for role_dir in roles(root):
        text, current = wanted(role_dir)
        if text != current:
            stale.append(os.path.relpath(os.path.join(role_dir, 'README.md'), root))
    return stale


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='change nothing; exit 1 when a README drifted')
    parser.add_argument('--root', default=ROOT, help='the collection root (default: this checkout)')
    args = parser.parse_args()
    missing_specs = [d for d in sorted(glob.glob(os.path.join(args.root, 'roles', '*')))
                     if os.path.isdir(d) and not os.path.exists(os.path.join(d, 'meta', 'argument_specs.yml'))]
    if missing_specs:
        sys.exit('roles without meta/argument_specs.yml: %s' % ', '.join(os.path.basename(d) for d in missing_specs))
    if args.check:
        stale = drift(args.root)
        if stale:
            sys.exit('out of date with meta/argument_specs.yml: %s; run scripts/role_readme.py' % ', '.join(stale))
        return
    for role_dir in roles(args.root):
        text, current = wanted(role_dir)
        if text != current:
            with open(os.path.join(role_dir, 'README.md'), 'w') as handle:
                handle.write(text)
            print('wrote %s' % os.path.relpath(os.path.join(role_dir, 'README.md'), args.root))


if __name__ == '__main__':
    main()
