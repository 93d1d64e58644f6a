# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of modules that write a systemd drop-in; a module extends it with
``oomguard.memory.systemd``."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  daemon_reload:
    description:
      - Run C(systemctl daemon-reload) when the module changed its drop-in, so systemd reads it
        (for a running unit, memory limits apply at once; C(OOMScoreAdjust=) when the unit next
        starts).
      - V(false) leaves the reload to the caller, for example one handler notified by every task
        of a loop, so a play reloads systemd once instead of once per item. RV(daemon_reload) then
        stays V(false).
    type: bool
    default: true
'''
