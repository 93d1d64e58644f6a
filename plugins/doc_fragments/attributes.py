# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attributes every oomguard module shares; a module extends it with
``oomguard.memory.attributes`` (modules that change the host),
``oomguard.memory.attributes.facts`` (read-only modules; one that returns plain values overrides
``facts``) or ``oomguard.memory.attributes.platform`` (modules that document check and diff mode
themselves)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options: {}
attributes:
  check_mode:
    description: Can run in check mode and predicts exactly what a real run would change.
    support: full
  diff_mode:
    description: Shows, in diff mode, the files it would change and the kernel values before and after.
    support: full
  platform:
    description: Runs on Linux hosts only.
    support: full
    platforms: posix
'''

    FACTS = r'''
options: {}
attributes:
  check_mode:
    description:
      - Reads only; runs the same in check mode.
    support: full
  diff_mode:
    description:
      - Changes nothing, so there is nothing to show.
    support: none
  facts:
    description:
      - Returns its results as facts.
    support: full
  platform:
    description:
      - Runs on Linux hosts only.
    support: full
    platforms: posix
'''

    PLATFORM = r'''
options: {}
attributes:
  platform:
    description: Runs on Linux hosts only.
    support: full
    platforms: posix
'''
