# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attributes every oomguard module shares; a module extends it with
``oomguard.memory.attributes`` (modules that change the host and predict it in check mode),
``oomguard.memory.attributes.facts`` (read-only fact modules),
``oomguard.memory.attributes.readonly`` (read-only modules that return plain values) or
``oomguard.memory.attributes.platform`` (modules that document check and diff mode themselves).

Each attribute is written once below; the fragments are put together from them."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

_HEAD = r'''
options: {}
attributes:
'''

_PLATFORM = r'''
  platform:
    description: Runs on Linux hosts only.
    support: full
    platforms: posix
'''

_READ_ONLY = r'''
  check_mode:
    description: Reads only; runs the same in check mode.
    support: full
  diff_mode:
    description: Changes nothing, so there is nothing to show.
    support: none
'''


class ModuleDocFragment(object):

    DOCUMENTATION = _HEAD + r'''
  check_mode:
    description: Can run in check mode and predicts exactly what a real run would change.
    support: full
  diff_mode:
    description: Shows, in diff mode, the files it would change and the kernel values before and after.
    support: full
''' + _PLATFORM

    FACTS = _HEAD + _READ_ONLY + r'''
  facts:
    description: Returns its results as facts.
    support: full
''' + _PLATFORM

    READONLY = _HEAD + _READ_ONLY + _PLATFORM

    PLATFORM = _HEAD + _PLATFORM
