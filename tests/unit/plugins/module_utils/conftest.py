"""Fixtures shared by the module_utils unit tests."""
import time

import pytest


@pytest.fixture
def utc(monkeypatch):
    """Run in TZ=UTC (syslog and dmesg -T stamps are local time) and put the zone back after."""
    monkeypatch.setenv('TZ', 'UTC')
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
