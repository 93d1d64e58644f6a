"""fstab editing: only our line changes, every other byte stays (comments, tabs, CRLF, no final newline)."""
import os

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils.fstab import (
    current_line, entry_satisfies, escape_field, parse_line, render_entry, set_swap_entry, swap_entries,
    unescape_field)

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'swap')


# Kept in code, not in a fixture file: ansible-test sanity rejects files with CRLF line endings.
CRLF_FSTAB = 'UUID=abcd / ext4 defaults 0 1\r\n# crlf file\r\n'


def fixture(name):
    if name == 'fstab-crlf':
        return CRLF_FSTAB
    with open(os.path.join(FIXTURES, name), 'rb') as handle:
        return handle.read().decode('utf-8')


@pytest.mark.parametrize('name', ['fstab-odd', 'fstab-no-final-newline', 'fstab-crlf'])
def test_add_then_remove_gives_back_the_original_bytes(name):
    original = fixture(name)
    added = set_swap_entry(original, '/var/tmp/swap', present=True)
    assert added.startswith(original.rstrip('\r\n'))
    assert current_line(added, '/var/tmp/swap') == '/var/tmp/swap none swap sw 0 0'
    assert set_swap_entry(added, '/var/tmp/swap', present=False) == original


def test_add_keeps_every_other_line_byte_for_byte():
    original = fixture('fstab-odd')
    added = set_swap_entry(original, '/swapfile', priority=3)
    assert added == original + '/swapfile none swap sw,pri=3 0 0\n'


def test_missing_final_newline_is_kept_when_appending():
    original = 'UUID=abcd / ext4 defaults 0 1'
    added = set_swap_entry(original, '/swapfile')
    assert added == 'UUID=abcd / ext4 defaults 0 1\n/swapfile none swap sw 0 0'


def test_crlf_file_gets_a_crlf_line():
    added = set_swap_entry(fixture('fstab-crlf'), '/swapfile')
    assert added.endswith('# crlf file\r\n/swapfile none swap sw 0 0\r\n')


def test_existing_satisfying_line_is_left_alone_with_its_spacing():
    text = 'UUID=abcd / ext4 defaults 0 1\n/swapfile\t  none  swap   defaults,pri=7\t0 0\n# end\n'
    assert set_swap_entry(text, '/swapfile') == text
    assert set_swap_entry(text, '/swapfile', priority=7) == text


def test_wrong_priority_is_replaced_in_place_and_duplicates_removed():
    text = '# head\n/swapfile none swap sw,pri=1 0 0\n/dev/sda1 /boot ext4 defaults 0 2\n/swapfile none swap sw 0 0\n'
    assert set_swap_entry(text, '/swapfile', priority=5) == (
        '# head\n/swapfile none swap sw,pri=5 0 0\n/dev/sda1 /boot ext4 defaults 0 2\n')


def test_noauto_line_does_not_count_as_activating_at_boot():
    text = '/swapfile none swap noauto 0 0\n'
    assert not entry_satisfies(text, '/swapfile')
    assert set_swap_entry(text, '/swapfile') == '/swapfile none swap sw 0 0\n'


def test_remove_last_line_without_ending_keeps_the_file_without_final_newline():
    original = fixture('fstab-no-final-newline')
    assert set_swap_entry(original, '/swapfile', present=False) == 'UUID=abcd / ext4 defaults 0 1'


def test_other_swap_entries_and_commented_lines_are_untouched():
    text = '#/swapfile none swap sw 0 0\n/other none swap sw 0 0\nUUID=1234 none swap sw 0 0\n'
    assert set_swap_entry(text, '/swapfile', present=False) == text
    assert swap_entries(text, '/swapfile') == []


def test_empty_and_missing_files():
    assert set_swap_entry('', '/swapfile') == '/swapfile none swap sw 0 0\n'
    assert set_swap_entry(None, '/swapfile', present=False) == ''


def test_paths_with_spaces_are_escaped_both_ways():
    line = render_entry('/var/my swap', 2)
    assert line == '/var/my\\040swap none swap sw,pri=2 0 0'
    assert parse_line(line)['spec'] == '/var/my swap'
    assert unescape_field(escape_field('a\\b c\td')) == 'a\\b c\td'
    text = set_swap_entry('', '/var/my swap', 2)
    assert swap_entries(text, '/var/my swap') == [0]


def test_non_swap_line_for_same_path_is_not_ours():
    text = '/swapfile /mnt ext4 loop 0 0\n'
    assert swap_entries(text, '/swapfile') == []
    assert set_swap_entry(text, '/swapfile') == text + '/swapfile none swap sw 0 0\n'
