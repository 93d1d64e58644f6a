"""Run a module's main() in-process with given arguments and capture what it returns.

    result = run_module(swappiness, {'value': 10, '_ansible_check_mode': True})
    assert result['changed'] is False          # result of exit_json
    assert 'failed' in result                  # result of fail_json (msg in result['msg'])
    assert result['warnings'] == [...]         # what module.warn() said during the run
"""
import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class _Exit(Exception):
    def __init__(self, result):
        super(_Exit, self).__init__(result)
        self.result = result


def _exit_json(self, **kwargs):
    kwargs.setdefault('changed', False)
    raise _Exit(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs['failed'] = True
    kwargs['msg'] = msg
    raise _Exit(kwargs)


@pytest.fixture
def run_module(monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', _fail_json)
    warnings = []
    real_warn = basic.AnsibleModule.warn

    def warn(self, msg, *args, **kwargs):
        warnings.append(msg)
        return real_warn(self, msg, *args, **kwargs)
    monkeypatch.setattr(basic.AnsibleModule, 'warn', warn)

    def run(module, args):
        del warnings[:]
        with patch_module_args(json.loads(json.dumps(args))):
            with pytest.raises(_Exit) as caught:
                module.main()
        result = caught.value.result
        result.setdefault('warnings', list(warnings))
        return result
    return run


class Hang(Exception):
    """The code under test blocked for longer than the test allows."""


@pytest.fixture
def no_hang():
    """Fail (instead of waiting forever) when the test blocks for 5 seconds: a blocking open()
    or read() of a FIFO is interrupted by SIGALRM and the handler raises Hang."""
    import signal

    def alarm(_signum, _frame):
        raise Hang('blocked for 5 seconds')
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(5)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
