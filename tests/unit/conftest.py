"""Fixtures shared by every unit test.

``set_tz`` changes the process time zone for one test and restores it afterwards, including the C
library's copy: ``time.tzset()`` caches TZ, so putting the environment variable back (what
``monkeypatch.setenv`` does) is not enough. ``_time_zone_untouched`` fails any test that leaves
the time zone changed, so the next test never runs in a zone it did not ask for.
"""
import os
import time

import pytest


def _zone():
    return os.environ.get('TZ'), time.tzname, time.timezone, time.altzone, time.daylight


@pytest.fixture
def set_tz():
    """``set_tz('UTC')``: this test runs in that zone; the zone before it comes back after it."""
    saved = os.environ.get('TZ')

    def set_zone(name):
        os.environ['TZ'] = name
        time.tzset()
    yield set_zone
    if saved is None:
        os.environ.pop('TZ', None)
    else:
        os.environ['TZ'] = saved
    time.tzset()


@pytest.fixture(autouse=True)
def _time_zone_untouched():
    before = _zone()
    yield
    after = _zone()
    if after != before:
        os.environ.pop('TZ', None) if before[0] is None else os.environ.__setitem__('TZ', before[0])
        time.tzset()
        pytest.fail('the test left the time zone changed (%r, was %r); use the set_tz fixture' % (after, before))
