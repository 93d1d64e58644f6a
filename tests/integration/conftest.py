"""Fixtures of the integration suite: real runs on this machine, as root."""
import os

import pytest

from harness import Ansible
# The session's testbeds, for every test module that asks for them: the systemd container and the VM.
from testbed import systemd_container, vm  # noqa: F401  pylint: disable=unused-import

os.environ.setdefault('ANSIBLE_PYTHON_INTERPRETER', '/usr/bin/python3')


@pytest.fixture
def ansible(localhost):
    """Run modules and playbooks of the installed collection on localhost."""
    return Ansible(localhost)


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason='integration tests change the kernel and need root')
        for item in items:
            item.add_marker(skip)
