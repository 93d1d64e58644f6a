# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The environment in which a benchmark runs the collection's code with another interpreter."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def collection_env(work, python):
    """os.environ plus a PYTHONPATH that imports this checkout as ansible_collections.oomguard.memory.

    Under `work` (a temporary folder) it links the checkout where Ansible would unpack it; for an
    interpreter other than this one it also links ansible's own package, the module_utils that
    AnsiballZ would ship along with the module.
    """
    coll = os.path.join(work, 'collections', 'ansible_collections', 'oomguard')
    os.makedirs(coll)
    os.symlink(ROOT, os.path.join(coll, 'memory'))
    path = [os.path.join(work, 'collections')]
    if python != sys.executable:
        import ansible
        os.symlink(os.path.dirname(ansible.__file__), os.path.join(work, 'ansible'))
        path.append(work)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path), LC_ALL='C')
