"""Make the working tree importable as ansible_collections.oomguard.memory for every test.

Unit tests import the collection's code by its real name, the way Ansible loads it, without a
build: a symlink under .cache/ points at the repository root.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PARENT = os.path.join(ROOT, '.cache', 'src')
_LINK = os.path.join(_PARENT, 'ansible_collections', 'oomguard', 'memory')

if not os.path.islink(_LINK):
    os.makedirs(os.path.dirname(_LINK), exist_ok=True)
    os.symlink(ROOT, _LINK)
if _PARENT not in sys.path:
    sys.path.insert(0, _PARENT)
# Test helpers shared by the unit tests (faketree).
_UNIT = os.path.join(ROOT, 'tests', 'unit')
if _UNIT not in sys.path:
    sys.path.insert(0, _UNIT)
