# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Score the OOM parser on log excerpts with hand-read expectations (the fixture .json format).

For every NNN-name.log with its NNN-name.json in the given folders (default: the unit test
fixtures), parses the log as the module would and reports the share of expected victims found,
the share of expected fields right, and false kills (victims the expectations do not list).
Usage: bench/oom_fixture_score.py [FOLDER...]
"""

import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, '.cache', 'src'))
if not os.path.isdir(os.path.join(ROOT, '.cache', 'src', 'ansible_collections')):
    os.makedirs(os.path.join(ROOT, '.cache', 'src', 'ansible_collections', 'oomguard'), exist_ok=True)
    os.symlink(ROOT, os.path.join(ROOT, '.cache', 'src', 'ansible_collections', 'oomguard', 'memory'))

from ansible_collections.oomguard.memory.plugins.module_utils.oom_log import format_event, parse_stream  # noqa: E402

FIXTURES = os.path.join(ROOT, 'tests', 'unit', 'fixtures', 'oom-logs')
with open(os.path.join(FIXTURES, '..', 'oom-fields.json')) as _f:
    FIELDS = json.load(_f)


def dig(event, path):
    for key in path:
        if event is None:
            return None
        event = event.get(key)
    return event


def score(json_path):
    expected = json.load(open(json_path))['events']
    with open(json_path[:-5] + '.log', 'rb') as f:
        events = [format_event(e, 'x') for e in parse_stream(f)]
    want_victims = []
    for want in expected:
        want_victims.extend(want.get('victim_pids') or ([want['victim_pid']] if want.get('victim_pid') else []))
    got_victims = [v['pid'] for e in events for v in (e.get('victims') or [])]
    found = sum(1 for pid in want_victims if pid in got_victims)
    false = sum(1 for pid in set(got_victims) if pid not in want_victims)
    fields = right = 0
    for k, want in enumerate(expected):
        got = events[k] if k < len(events) else None
        for key, value in want.items():
            if key in FIELDS:
                fields += 1
                right += dig(got, FIELDS[key]) == value
            elif key == 'victim_pids':
                fields += 1
                right += got is not None and [v['pid'] for v in got['victims']] == value
    return len(want_victims), found, false, fields, right, len(expected) == len(events)


def main():
    folders = sys.argv[1:] or [FIXTURES]
    totals = [0, 0, 0, 0, 0, 0]
    files = sorted(p for folder in folders for p in glob.glob(os.path.join(folder, '*.json'))
                   if os.path.exists(p[:-5] + '.log'))
    for path in files:
        victims, found, false, fields, right, count_ok = score(path)
        for i, value in enumerate((victims, found, false, fields, right, not count_ok)):
            totals[i] += value
        if found < victims or false or right < fields or not count_ok:
            print('%s: victims %d/%d, false %d, fields %d/%d, event count %s'
                  % (os.path.basename(path), found, victims, false, right, fields, 'ok' if count_ok else 'WRONG'))
    victims, found, false, fields, right, wrong_counts = totals
    print('%d excerpts: victims found %d/%d (%.1f%%), fields %d/%d (%.1f%%), false kills %d, wrong event counts %d'
          % (len(files), found, victims, 100.0 * found / max(victims, 1), right, fields, 100.0 * right / max(fields, 1),
             false, wrong_counts))


if __name__ == '__main__':
    main()
