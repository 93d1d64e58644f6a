"""Fixtures shared by the module_utils unit tests."""
import pytest


@pytest.fixture
def utc(set_tz):
    """Run in TZ=UTC (syslog and dmesg -T stamps are local time); set_tz puts the zone back after."""
    set_tz('UTC')
