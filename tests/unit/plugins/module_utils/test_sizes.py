import pytest

from ansible_collections.oomguard.memory.plugins.module_utils.sizes import SizeError, format_size, parse_size

GIB = 1024 ** 3


@pytest.mark.parametrize('text, expected', [
    ('1073741824', GIB),
    (1073741824, GIB),
    ('0', 0),
    ('512K', 512 * 1024),
    ('512KiB', 512 * 1024),
    ('512KB', 512 * 1024),
    ('512k', 512 * 1024),
    ('2G', 2 * GIB),
    ('2GB', 2 * GIB),
    ('2 GiB', 2 * GIB),
    ('1.5g', 1610612736),
    ('0.5M', 512 * 1024),
    ('.5M', 512 * 1024),
    ('1T', 1024 * GIB),
    (' 64M ', 64 * 1024 ** 2),
    ('100B', 100),
])
def test_parse_size_accepts(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize('text, words', [
    ('', 'empty'),
    ('   ', 'empty'),
    ('-1', 'negative'),
    ('-5G', 'negative'),
    (-1, 'negative'),
    ('abc', 'cannot read'),
    ('5X', 'cannot read'),
    ('5 G B', 'cannot read'),
    ('1.5', 'whole number of bytes'),
    ('99999999E', 'larger than the kernel'),
    (2 ** 63, 'larger than the kernel'),
    (True, 'boolean'),
    (['1G'], 'expected a size'),
    ('25%', 'percentage'),
    ('infinity', 'not allowed'),
])
def test_parse_size_rejects_with_a_sentence(text, words):
    with pytest.raises(SizeError) as caught:
        parse_size(text, name='size')
    assert words in str(caught.value)
    assert str(caught.value).startswith('size: ')


def test_percent_is_a_share_of_total():
    assert parse_size('25%', allow_percent=True, total=8 * GIB) == 2 * GIB
    assert parse_size('12.5 %', allow_percent=True, total=8 * GIB) == GIB


def test_percent_limits():
    with pytest.raises(SizeError, match='more than 100%'):
        parse_size('101%', allow_percent=True, total=GIB)
    with pytest.raises(SizeError, match='total it is a share of'):
        parse_size('10%', allow_percent=True)


@pytest.mark.parametrize('word', ['infinity', 'max', 'MAX', 'Infinity'])
def test_infinity_when_allowed(word):
    assert parse_size(word, allow_infinity=True) is None


@pytest.mark.parametrize('size, text', [
    (0, '0'), (1000, '1000'), (1024, '1K'), (1536, '1.5K'), (64 * 1024 ** 2, '64M'),
    (1610612736, '1.5G'), (2 * GIB, '2G'), (GIB + 1, '1073741825'), (None, 'infinity'),
])
def test_format_size(size, text):
    assert format_size(size) == text


@pytest.mark.parametrize('size', [1, 4096, 1536, 64 * 1024 ** 2, 1610612736, 5 * GIB + 512 * 1024 ** 2])
def test_format_then_parse_round_trips(size):
    assert parse_size(format_size(size)) == size
