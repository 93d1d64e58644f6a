# -*- coding: utf-8 -*-
# Copyright: oomguard developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error base class of the collection.

Private to the oomguard.memory collection: no compatibility promise to other code.

Every error a module can raise for a user mistake or a host state it refuses to touch derives
from ``OomguardError``; ``str()`` of it is the one sentence shown to the user. A module's
``main()`` catches ``OomguardError`` once and calls ``fail_json`` with that sentence.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class OomguardError(Exception):
    """A refusal or failure to report as one sentence; never a traceback."""
