"""module_utils/params: what AnsibleModule's types let through and we refuse."""
import pytest

from ansible_collections.oomguard.memory.plugins.module_utils.params import InputError, check_path, refuse_bools


@pytest.mark.parametrize('value, words', [
    ('', 'the path is empty'), ('/a\x00b', 'contains a NUL byte'), ('rel/x', 'is relative'),
    ('/\udcff', 'is not valid UTF-8'), ('/' + 'a' * 4096, 'more than Linux allows (4095)'),
    ('/x/' + 'b' * 256, 'a component of the path is 256 bytes long'),
])
def test_check_path_refuses_with_the_option_name(value, words):
    with pytest.raises(InputError) as caught:
        check_path('pidfile', value)
    assert str(caught.value).startswith('pidfile: ') and words in str(caught.value)


def test_check_path_accepts_legal_paths():
    assert check_path('path', '/var/' + 'a' * 255) == '/var/' + 'a' * 255
    assert check_path('path', 'rel', absolute=False) == 'rel'


def test_refuse_bools_in_ints_and_lists():
    refuse_bools({'value': 0, 'pid': [1, 2]}, ['value', 'pid'])
    with pytest.raises(InputError, match=r'^value: False is a boolean'):
        refuse_bools({'value': False}, ['value'])
    with pytest.raises(InputError, match=r'^pid: \[1, True\] is a boolean'):
        refuse_bools({'pid': [1, True]}, ['pid'])
