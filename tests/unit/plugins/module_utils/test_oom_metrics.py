"""The monitor collector (oom_metrics): incremental log reading, counting, rendering and a whole
run against fake /proc and cgroup trees and real OOM log excerpts (tests/unit/fixtures/oom-logs)."""
import errno
import json
import os

import pytest

from ansible_collections.oomguard.memory.plugins.module_utils import oom_metrics as om
from faketree import write

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'fixtures')


def fixture(name):
    with open(os.path.join(FIXTURES, 'oom-logs', name), 'rb') as handle:
        return handle.read()


MEMCG_V1 = fixture('107-captured-6.18-cgroup1-memcg.log')      # python3 in /feas_oom (cgroup v1)
SYSTEMD_RUN = fixture('108-captured-6.1-cgroup2-systemd-run.log')


def config_for(tmp_path, **extra):
    config = {'textfile': str(tmp_path / 'out' / 'oomguard.prom'), 'state': str(tmp_path / 'state' / 'state.json'),
              'sources': ['/var/log/kern.log'], 'root': str(tmp_path / 'root')}
    config.update(extra)
    os.makedirs(str(tmp_path / 'out'), exist_ok=True)
    # the few /proc files every run reads
    write(config['root'], '/proc/stat', 'cpu  1 2 3\nbtime 1795990000\n')
    write(config['root'], '/proc/meminfo', 'MemTotal: 1000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n')
    write(config['root'], '/proc/vmstat', 'oom_kill 0\n')
    write(config['root'], '/proc/sys/vm/swappiness', '60\n')
    return om.check_config(config)


def metrics(path):
    """{(name, frozenset(labels)): value} of an exposition file, read independently of render()."""
    found = {}
    with open(path) as handle:
        for line in handle:
            if line.startswith('#') or not line.strip():
                continue
            series, value = line.rsplit(' ', 1)
            name, _sep, labels = series.partition('{')
            pairs = frozenset(tuple(p.split('=', 1)) for p in labels.rstrip('}').split(',') if p) if labels else frozenset()
            found[(name, frozenset((k, v.strip('"')) for k, v in pairs))] = float(value)
    return found


def kills(path):
    return {dict(labels).get('victim'): value for (name, labels), value in metrics(path).items()
            if name == 'oomguard_oom_kills_total'}


# ---- rendering ---------------------------------------------------------------------------------

def test_render_follows_the_exposition_format():
    fam = om.Family('oomguard_x_bytes', 'gauge', 'Line one\nwith a back\\slash.')
    fam.add(float('inf'), cgroup='/a"b', unit='')
    fam.add(3.0, cgroup='/a')
    fam.add(None, cgroup='/none')
    empty = om.Family('oomguard_empty_total', 'counter', 'Nothing.')
    text = om.render([fam, empty], comments=['cannot read x:\n  because'])
    assert text == ('# oomguard: cannot read x: because\n'
                    '# HELP oomguard_x_bytes Line one\\nwith a back\\\\slash.\n'
                    '# TYPE oomguard_x_bytes gauge\n'
                    'oomguard_x_bytes{cgroup="/a"} 3\n'
                    'oomguard_x_bytes{cgroup="/a\\"b"} +Inf\n')


def test_values_keep_fractions_and_integers():
    assert om._format_value(0.0013) == '0.0013'
    assert om._format_value(2) == '2'
    assert om._format_value(True) == '1'
    assert om._format_value(1795998026.635) == '1795998026.635'


# ---- counting ----------------------------------------------------------------------------------

def event(name, memcg=None, oom_memcg=None, when='2026-11-30T00:00:00Z'):
    return {'victim': {'name': name, 'pid': 1} if name else None, 'task_memcg': memcg, 'oom_memcg': oom_memcg,
            'time': when}


def test_count_kills_by_victim_and_cgroups():
    state = om.new_state()
    added = om.count_kills(state, [event('java', '/system.slice/app.service'), event(None),
                                   event('java', '/system.slice/app.service', when='2026-11-30T00:01:00.5Z'),
                                   event('hog', '/batch', '/batch', when=None)])
    assert added == 3
    assert sorted(state['kills']) == [['hog', '/batch', '/batch', 1], ['java', '/system.slice/app.service', '', 2]]
    assert state['last_kill'] == 1795996860.5


def test_series_beyond_the_cap_are_counted_as_other():
    state = om.new_state()
    om.count_kills(state, [event('a'), event('b'), event('c'), event('d')], max_series=2)
    assert sorted(state['kills']) == [['a', '', '', 1], ['b', '', '', 1], ['other', '', '', 2]]


def test_events_before_the_bound_are_not_counted():
    state = om.new_state()
    assert om.count_kills(state, [event('old', when='2020-01-01T00:00:00Z'), event('new')], not_before=1700000000) == 1


# ---- configuration ------------------------------------------------------------------------------

@pytest.mark.parametrize('change, words', [
    ({'textfile': 'relative.prom'}, 'textfile must be an absolute path'),
    ({'sources': ['syslog']}, "source 'syslog' is not auto, kmsg, journal"),
    ({'sources': ['/var/log/kern.log.2.gz']}, 'is compressed'),
    ({'critical': [{'name': 'x'}]}, "critical item 'x' needs exactly one of unit or process"),
    ({'critical': [{'name': 'x', 'process': '(['}]}, 'is not a valid regular expression'),
])
def test_bad_configuration_is_one_sentence(tmp_path, change, words):
    config = {'textfile': '/t/oomguard.prom', 'state': '/s/state.json'}
    config.update(change)
    with pytest.raises(om.MonitorError) as err:
        om.check_config(config, '/etc/oomguard-monitor.json')
    assert words in str(err.value)
    assert '\n' not in str(err.value)


def test_unreadable_or_broken_config_file(tmp_path):
    with pytest.raises(om.MonitorError, match='cannot read the collector configuration'):
        om.load_config(str(tmp_path / 'missing.json'))
    path = tmp_path / 'broken.json'
    path.write_text('{"textfile": ')
    with pytest.raises(om.MonitorError, match='is not valid JSON'):
        om.load_config(str(path))


# ---- a whole run on a plain log file ------------------------------------------------------------

def test_file_source_counts_each_kill_once_across_runs(tmp_path):
    config = config_for(tmp_path)
    log = write(config['root'], '/var/log/kern.log', '')
    with open(log, 'wb') as handle:
        handle.write(b'[    1.000000] Linux version 6.18\n' + MEMCG_V1)
    assert om.run(config)[0] == 0
    assert kills(config['textfile']) == {'python3': 1}
    labels = [dict(l) for (n, l) in metrics(config['textfile']) if n == 'oomguard_oom_kills_total'][0]
    assert labels == {'victim': 'python3', 'memcg': '/feas_oom', 'oom_memcg': '/feas_oom'}
    # nothing new: nothing added
    assert om.run(config)[0] == 0
    assert kills(config['textfile']) == {'python3': 1}
    # a second report is appended: counted once, the first one not again
    with open(log, 'ab') as handle:
        handle.write(MEMCG_V1)
    om.run(config)
    assert kills(config['textfile']) == {'python3': 2}
    assert metrics(config['textfile'])[('oomguard_collector_success', frozenset())] == 1


def test_a_line_still_being_written_is_read_next_time(tmp_path):
    config = config_for(tmp_path)
    log = write(config['root'], '/var/log/kern.log', '')
    cut = MEMCG_V1.rindex(b'Killed process') + 20     # the kill line is half written
    with open(log, 'wb') as handle:
        handle.write(MEMCG_V1[:cut])
    om.run(config)
    state = json.loads(open(config['state']).read())
    assert state['positions']['/var/log/kern.log']['offset'] == MEMCG_V1.rindex(b'\n', 0, cut) + 1
    with open(log, 'ab') as handle:
        handle.write(MEMCG_V1[cut:])
    om.run(config)
    assert kills(config['textfile']) == {'python3': 1}


def test_rotation_finishes_the_old_file_then_reads_the_new_one(tmp_path):
    config = config_for(tmp_path)
    log = write(config['root'], '/var/log/kern.log', '')
    with open(log, 'wb') as handle:
        handle.write(b'[    1.000000] boot\n')
    om.run(config)
    with open(log, 'ab') as handle:
        handle.write(MEMCG_V1)                      # written after the last run ...
    os.rename(log, log + '.1')                      # ... then rotated away
    with open(log, 'wb') as handle:
        handle.write(SYSTEMD_RUN)
    om.run(config)
    counted = {dict(labels)['memcg']: value for (name, labels), value in metrics(config['textfile']).items()
               if name == 'oomguard_oom_kills_total'}
    assert counted == {'/feas_oom': 1, '/system.slice/run-u2.service': 1}


def test_a_truncated_file_is_read_from_the_start(tmp_path):
    config = config_for(tmp_path)
    log = write(config['root'], '/var/log/kern.log', '')
    with open(log, 'wb') as handle:
        handle.write(b'x' * 100000 + b'\n')
    om.run(config)
    with open(log, 'wb') as handle:
        handle.write(MEMCG_V1)
    om.run(config)
    assert kills(config['textfile']) == {'python3': 1}


def test_hostile_lines_never_fail_the_run(tmp_path):
    config = config_for(tmp_path)
    log = write(config['root'], '/var/log/kern.log', '')
    junk = (b'\xff\xfe\x00binary\x00' * 5000 + b'\n' + b'Killed process (((\n' + b'invoked oom-killer: gfp_mask=0xzz\n'
            + b'Killed process 12 (' + b'a' * 200000 + b'\n' + MEMCG_V1[:2000] + b'\n')
    with open(log, 'wb') as handle:
        handle.write(junk + MEMCG_V1)
    rc, problems = om.run(config)
    assert rc == 0 and problems == []
    assert kills(config['textfile'])['python3'] >= 1


def test_a_parser_crash_is_reported_in_the_file_not_raised(tmp_path, monkeypatch):
    config = config_for(tmp_path)
    write(config['root'], '/var/log/kern.log', 'whatever\n')

    def boom(*_args, **_kwargs):
        raise RuntimeError('unexpected input')
    monkeypatch.setattr(om, 'parse_stream', boom)
    rc, problems = om.run(config)
    assert rc == 0
    text = open(config['textfile']).read()
    assert '# oomguard: reading /var/log/kern.log failed: RuntimeError: unexpected input' in text
    assert metrics(config['textfile'])[('oomguard_collector_success', frozenset())] == 0
    assert problems


def test_a_missing_source_and_a_damaged_state_are_reported(tmp_path):
    config = config_for(tmp_path)
    os.makedirs(os.path.dirname(config['state']))
    with open(config['state'], 'w') as handle:
        handle.write('{not json')
    rc, problems = om.run(config)
    assert rc == 0
    assert any('damaged' in p for p in problems)
    assert any('cannot read' in p and 'kern.log' in p for p in problems)
    assert metrics(config['textfile'])[('oomguard_collector_success', frozenset())] == 0


def test_an_unwritable_textfile_directory_fails_the_run(tmp_path):
    config = config_for(tmp_path, textfile=str(tmp_path / 'no-such-dir' / 'oomguard.prom'))
    write(config['root'], '/var/log/kern.log', '')
    rc, problems = om.run(config)
    assert rc == 1 and 'cannot write' in problems[-1]


def test_main_says_what_is_wrong(tmp_path, capsys):
    assert om.main(['--config', str(tmp_path / 'nope.json')]) == 1
    assert 'cannot read the collector configuration' in capsys.readouterr().err
    assert om.main([]) == 2


def test_the_textfile_keeps_its_mode_and_is_replaced_atomically(tmp_path):
    config = config_for(tmp_path, mode='0640')
    write(config['root'], '/var/log/kern.log', '')
    om.run(config)
    assert oct(os.stat(config['textfile']).st_mode & 0o777) == '0o640'
    assert os.listdir(os.path.dirname(config['textfile'])) == ['oomguard.prom']
    assert oct(os.stat(config['state']).st_mode & 0o777) == '0o600'


# ---- /dev/kmsg and the journal ------------------------------------------------------------------

def test_kmsg_records_after_the_last_sequence_number(monkeypatch):
    records = [b'6,10,100,-;old\n', b'6,11,200,-;Killed process 5 (x)\n SUBSYSTEM=x\n', b'6,12,300,-;new\n']

    def fake_read(_fd, _size):
        if not records:
            raise OSError(errno.EAGAIN, 'again')
        return records.pop(0)
    monkeypatch.setattr(om.os, 'read', fake_read)
    seen = [10]
    expected = [b'6,11,200,-;Killed process 5 (x)', b' SUBSYSTEM=x', b'6,12,300,-;new']
    assert list(om._kmsg_records(3, 10, seen)) == expected
    assert seen == [12]


class FakeJournal(object):
    def __init__(self, lines, calls):
        self.stdout = iter(lines)
        self.calls = calls

    def wait(self):
        return 0


def test_journal_is_read_after_the_saved_cursor(tmp_path):
    config = config_for(tmp_path, sources=['journal'])
    calls = []
    lines = [json.dumps({'MESSAGE': line, '_TRANSPORT': 'kernel', '__REALTIME_TIMESTAMP': '1795996800000000'}).encode() + b'\n'
             for line in MEMCG_V1.decode().splitlines()]

    def popen(argv):
        calls.append(argv)
        return FakeJournal(lines + [b'-- cursor: s=abc;i=42\n'], calls)
    state = om.new_state()
    events = om._LogReader(config, state, [], None, 'boot', popen).events('journal')
    assert [e['victim']['name'] for e in events if e['victim']] == ['python3']
    assert state['positions']['journal'] == {'cursor': 's=abc;i=42'}
    om._LogReader(config, state, [], None, 'boot', lambda argv: FakeJournal([], calls.append(argv) or calls)).events('journal')
    assert '--after-cursor=s=abc;i=42' in calls[-1]
    assert not any(a.startswith('--after-cursor') for a in calls[0])


# ---- /proc and the cgroup files -----------------------------------------------------------------

def add_process(root, pid, comm, adj, cgroup, ppid=1):
    fields = ['S', str(ppid), str(pid), str(pid), '0', '-1', '4194560'] + ['0'] * 12 + ['100', '0', '50']
    write(root, '/proc/%d/stat' % pid, '%d (%s) %s\n' % (pid, comm, ' '.join(fields)))
    write(root, '/proc/%d/cmdline' % pid, comm + '\0')
    write(root, '/proc/%d/oom_score_adj' % pid, '%d\n' % adj)
    write(root, '/proc/%d/cgroup' % pid, '0::%s\n' % cgroup)


def test_critical_services_protection(tmp_path):
    root = str(tmp_path)
    add_process(root, 100, 'postgres', -900, '/system.slice/postgresql.service')
    add_process(root, 101, 'postgres', 0, '/system.slice/postgresql.service')   # a worker restarted by hand
    add_process(root, 102, 'postgres', 0, '/system.slice/postgresql.service', ppid=100)  # a backend: may be 0
    add_process(root, 200, 'sshd', -900, '/system.slice/ssh.service')
    add_process(root, 210, 'sshd', 0, '/system.slice/ssh.service', ppid=200)   # a login's sshd, reset by OpenSSH
    items = [{'name': 'postgresql.service', 'unit': 'postgresql.service'}, {'name': 'sshd', 'process': '^sshd$'},
             {'name': 'redis.service', 'unit': 'redis.service'}]
    fams = {f.name: {s[0]['service']: s[1] for s in f.samples} for f in om.critical_families(root, items, [])}
    assert fams['oomguard_critical_service_processes'] == {'postgresql.service': 2, 'sshd': 1, 'redis.service': 0}
    assert fams['oomguard_critical_service_oom_score_adj'] == {'postgresql.service': 0, 'sshd': -900}
    assert fams['oomguard_critical_service_protected'] == {'postgresql.service': 0, 'sshd': 1}


def test_unit_control_groups():
    assert om.unit_control_group('app.service') == '/system.slice/app.service'
    assert om.unit_control_group('batch-jobs.slice') == '/batch.slice/batch-jobs.slice'
    assert om.unit_control_group('-.slice') == '/'


def test_cgroup_v2_limits_usage_and_counters(tmp_path):
    root = str(tmp_path)
    write(root, '/proc/mounts', 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n')
    write(root, '/sys/fs/cgroup/cgroup.controllers', 'cpu io memory pids\n')
    unit = '/sys/fs/cgroup/system.slice/app.service/'
    write(root, unit + 'memory.max', '1073741824\n')
    write(root, unit + 'memory.high', 'max\n')
    write(root, unit + 'memory.current', '524288000\n')
    write(root, unit + 'memory.events', 'low 0\nhigh 3\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\n')
    items = [{'name': 'app.service', 'unit': 'app.service'}, {'name': 'gone.service', 'unit': 'gone.service'}]
    fams = {f.name: f.samples for f in om.cgroup_families(root, items, [])}
    labels = {'cgroup': '/system.slice/app.service', 'unit': 'app.service'}
    assert fams['oomguard_cgroup_memory_max_bytes'] == [(labels, 1073741824)]
    assert fams['oomguard_cgroup_memory_high_bytes'] == [(labels, float('inf'))]
    assert fams['oomguard_cgroup_memory_usage_bytes'] == [(labels, 524288000)]
    assert fams['oomguard_cgroup_oom_total'] == [(labels, 2)]
    assert fams['oomguard_cgroup_oom_kills_total'] == [(labels, 1)]


def test_system_metrics_in_base_units(tmp_path):
    root = str(tmp_path)
    write(root, '/proc/meminfo', 'MemTotal: 1000 kB\nSwapTotal: 2048 kB\nSwapFree: 1024 kB\n')
    write(root, '/proc/sys/vm/swappiness', '60\n')
    psi = 'some avg10=1.50 avg60=0.25 avg300=0.00 total=2500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n'
    write(root, '/proc/pressure/memory', psi)
    write(root, '/proc/vmstat', 'nr_free_pages 1\noom_kill 7\n')
    fams = {f.name: f.samples for f in om.system_families(root, [])}
    assert fams['oomguard_swap_size_bytes'] == [({}, 2097152)]
    assert fams['oomguard_swap_used_bytes'] == [({}, 1048576)]
    assert fams['oomguard_vm_swappiness'] == [({}, 60)]
    assert ({'kind': 'some', 'window': '10s'}, 0.015) in fams['oomguard_memory_pressure_ratio']
    assert ({'kind': 'some'}, 2.5) in fams['oomguard_memory_pressure_stall_seconds_total']
    assert fams['oomguard_kernel_oom_kills_total'] == [({}, 7)]


def test_auto_takes_the_journal_only_when_it_holds_kernel_messages(tmp_path, monkeypatch):
    config = config_for(tmp_path, sources=['auto'])
    write(config['root'], '/run/systemd/journal/socket', '')
    monkeypatch.setattr(om, '_which', lambda name: '/usr/bin/' + name)
    calls = []

    def empty_journal(argv):
        calls.append(argv)
        return FakeJournal([], calls)
    state = om.new_state()
    reader = om._LogReader(config, state, [], None, 'boot-1', empty_journal)
    monkeypatch.setattr(reader, '_kmsg', lambda: ['kmsg events'])
    assert reader.events('auto') == ['kmsg events']      # journald runs, but without kernel messages
    assert state['positions']['auto'] == {'boot_id': 'boot-1', 'source': 'kmsg'}
    reader.events('auto')
    assert len(calls) == 1                                # decided once per boot

    def kernel_journal(argv):
        calls.append(argv)
        return FakeJournal([b'6,1,1,-;Linux version 6.1\n'], calls)
    reader = om._LogReader(config, state, [], None, 'boot-2', kernel_journal)
    reader.events('auto')
    assert state['positions']['auto'] == {'boot_id': 'boot-2', 'source': 'journal'}
    assert '--show-cursor' in calls[-1]
