"""Issue 15's matrix: every option of swapfile, swappiness, oom_score_adj and memory_limit that takes
a path, a size, a pattern, a file or a number, fed the hostile forms a real user sends.

Each case must end in one sentence that names the option (a failure, or for a pattern that can
match nothing, the warning saying so), without a traceback, within 5 seconds (FIFOs and
/dev/zero must not be waited on), and leave the fake host exactly as it was: no file under the
test's tree changed and no command run.

The NUL-byte cases run with ``_ansible_no_log`` (what ``no_target_syslog`` sends): with syslog
logging on, AnsibleModule itself refuses a NUL byte in one sentence before the module runs.
"""
import json
import os

import pytest
from ansible.module_utils import basic

from ansible_collections.oomguard.memory.plugins.module_utils import cgroups, systemd
from ansible_collections.oomguard.memory.plugins.modules import memory_limit, oom_score_adj, swapfile, swappiness
from faketree import write

HUGE_PATH = '/' + '/'.join(['d' * 200] * 25)          # 5000 bytes: over PATH_MAX
LONG_NAME = '/' + 'n' * 300                              # one component over NAME_MAX
NON_UTF8 = '/tmp/\udcff\udcfe.x'                         # what a non-UTF-8 file name arrives as
OVERFLOW = 10 ** 30


def snapshot(base):
    out = {}
    for directory, dirs, files in os.walk(str(base)):
        out[directory] = sorted(dirs)
        for name in files:
            path = os.path.join(directory, name)
            if os.path.islink(path) or not os.path.isfile(path):
                out[path] = 'special'
                continue
            with open(path, 'rb') as handle:
                out[path] = handle.read()
    return out


class Host(object):
    """One fake host for all four modules under tmp_path, with the special files the cases name."""

    def __init__(self, tmp, monkeypatch):
        self.tmp = tmp
        root = str(tmp / 'root')
        write(root, '/proc/swaps', 'Filename\tType\tSize\tUsed\tPriority\n')
        write(root, '/proc/meminfo', 'MemTotal: 16777216 kB\nMemAvailable: 16000000 kB\n')
        write(root, '/proc/mounts', '/dev/vda / ext4 rw 0 0\n'
                                    'cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n')
        write(root, '/sys/fs/cgroup/memory/cgroup.procs', '1\n100\n')
        write(root, '/proc/sys/vm/swappiness', '60\n')
        write(root, '/proc/sys/kernel/osrelease', '6.18.0\n')
        write(root, '/proc/self/status', 'CapEff:\t000001fffeffffff\n')
        write(root, '/proc/100/stat', '100 (app) S 1 100 100 0 -1 0' + ' 0' * 15 + '\n')
        write(root, '/proc/100/cmdline', '/usr/bin/app\0')
        write(root, '/proc/100/oom_score_adj', '0\n')
        write(root, '/proc/100/cgroup', '0::/user.slice\n')
        write(root, '/etc/fstab', '# fstab\n')
        os.makedirs(str(tmp / 'root' / 'run'))
        os.makedirs(str(tmp / 'host'))
        self.data = tmp / 'data'
        self.data.mkdir()
        self.fifo = str(self.data / 'fifo')
        os.mkfifo(self.fifo)
        self.directory = str(self.data / 'dir')
        os.mkdir(self.directory)
        self.link = str(self.data / 'link')
        os.symlink('/dev/zero', self.link)
        conf = tmp / 'root' / 'etc' / 'sysctl.d'
        conf.mkdir(parents=True)
        os.mkfifo(str(conf / 'fifo.conf'))
        os.symlink('/dev/zero', str(conf / 'zero.conf'))
        for module, names in ((swapfile, ('PROC_ROOT',)), (swappiness, ('PROC_ROOT', 'CONFIG_ROOT')),
                              (oom_score_adj, ('ROOT',)), (memory_limit, ('ROOT',))):
            for name in names:
                monkeypatch.setattr(module, name, root)
        monkeypatch.setattr(swapfile, 'FSTAB', os.path.join(root, 'etc/fstab'))
        monkeypatch.setattr(swapfile, 'HOST_ROOT', str(tmp / 'host'))
        monkeypatch.setattr(swappiness, 'HOST_ROOT', str(tmp / 'host'))
        self.commands = []
        monkeypatch.setattr(basic.AnsibleModule, 'run_command',
                            lambda module, argv, **kw: self.commands.append(argv) or (1, '', 'not here'))
        monkeypatch.setattr(systemd, 'show', lambda module, unit, props: {'LoadState': 'not-found'})
        for name in ('make_dir', 'write_file', 'remove_dir'):
            monkeypatch.setattr(cgroups, name, lambda *args: self.commands.append(args))


@pytest.fixture
def host(tmp_path, monkeypatch):
    return Host(tmp_path, monkeypatch)


# (module, base arguments, option, form name, value or a callable of the host giving it)
PATH_FORMS = [
    ('NUL byte', '/var/sw\x00ap'), ('empty', ''), ('relative', 'swap/file'), ('huge', HUGE_PATH),
    ('name too long', LONG_NAME), ('FIFO', lambda h: h.fifo), ('/dev/zero', '/dev/zero'),
    ('directory', lambda h: h.directory), ('symlink', lambda h: h.link), ('non-UTF-8', NON_UTF8),
]
SIZE_FORMS = [
    ('NUL byte', '1G\x00'), ('empty', ''), ('negative', '-1G'), ('overflow', '99999999999999999999G'),
    ('bool', True), ('garbage', 'lots'), ('non-UTF-8', '1\udcffG'),
]
INT_FORMS = [('bool', True), ('negative', -5), ('overflow', OVERFLOW)]
SYSCTL_FORMS = [
    ('NUL byte', '/etc/sysctl.d/a\x00.conf'), ('empty', ''), ('relative', 'sysctl.d/x.conf'),
    ('huge', HUGE_PATH), ('FIFO', '/etc/sysctl.d/fifo.conf'), ('/dev/zero', '/dev/zero'),
    ('symlink to /dev/zero', '/etc/sysctl.d/zero.conf'), ('directory', '/etc/sysctl.d/'),
    ('dot-file', '/etc/sysctl.d/.conf'), ('non-UTF-8', '/etc/sysctl.d/\udcff.conf'),
]
PATTERN_FORMS = [
    ('NUL byte', 'app\x00'), ('empty', ''), ('bad regex', '(unclosed'), ('matches everyone', '.*'),
    ('huge', 'x' * 100000), ('non-UTF-8', '\udcff'),
]
CGROUP_FORMS = [
    ('NUL byte', 'a\x00b'), ('empty', ''), ('dot-dot', '../../etc'), ('huge', 'a' * 5000),
    ('interface file name', 'memory.max'), ('non-UTF-8', '\udcffgroup'),
]

CASES = []
for form, value in PATH_FORMS:
    CASES.append((swapfile, {'size': '16M'}, 'path', form, value))
    CASES.append((oom_score_adj, {'value': 500}, 'pidfile', form, value))
for form, value in SIZE_FORMS:
    CASES.append((swapfile, {'path': '/var/tmp/oomguard-hostile-swap'}, 'size', form, value))
    CASES.append((swapfile, {'path': '/var/tmp/oomguard-hostile-swap', 'size': '16M'}, 'reserve', form, value))
    for option in ('max', 'high', 'swap_max', 'low', 'min'):
        CASES.append((memory_limit, {'cgroup': 'app', 'create': True}, option, form, value))
for form, value in INT_FORMS:
    CASES.append((swapfile, {'path': '/var/tmp/oomguard-hostile-swap', 'size': '16M'}, 'priority', form, value))
    CASES.append((swappiness, {}, 'value', form, value))
    CASES.append((oom_score_adj, {'pid': [100]}, 'value', form, value))
    CASES.append((oom_score_adj, {'value': 500}, 'pid', form, [value]))
    CASES.append((memory_limit, {'cgroup': 'app', 'create': True}, 'pids', form, [value]))
for form, value in SYSCTL_FORMS:
    CASES.append((swappiness, {'value': 10}, 'sysctl_file', form, value))
for form, value in PATTERN_FORMS:
    CASES.append((oom_score_adj, {'value': 500}, 'process', form, value))
for form, value in CGROUP_FORMS:
    CASES.append((memory_limit, {'max': '64M', 'create': True}, 'cgroup', form, value))
    if form != 'interface file name':    # memory.max is a valid unit name (memory.max.service)
        CASES.append((memory_limit, {'max': '64M'}, 'unit', form, value))

# Patterns that are valid but can match no process: the run ends with a warning naming them.
MATCHES_NOTHING = {('process', 'huge'), ('process', 'non-UTF-8')}
# A negative oom_score_adj is a valid value; without CAP_SYS_RESOURCE the refusal names it so.
NAMED_AS = {('value', 'negative'): 'oom_score_adj to -5'}


@pytest.mark.parametrize('module, base, option, form, value', CASES,
                         ids=['%s-%s-%s' % (c[0].__name__.rsplit('.', 1)[-1], c[2], c[3]) for c in CASES])
def test_hostile_input_is_one_sentence_naming_the_option(host, run_module, no_hang, module, base, option, form,
                                                         value):
    value = value(host) if callable(value) else value
    before = snapshot(host.tmp)
    args = dict(base, _ansible_no_log=True, in_container='manage') if module in (swapfile, swappiness) else \
        dict(base, _ansible_no_log=True)
    args[option] = value
    # JSON as Ansible sends it: a non-UTF-8 name arrives as lone surrogates, which newer
    # ansible-core refuses to hand to a module at all; older ones pass them on to our checks.
    try:
        result = run_module(module, json.loads(json.dumps(args)))
    except Exception as exc:    # pylint: disable=broad-except
        assert form == 'non-UTF-8' and 'invalid UTF8' in str(exc.__context__ or exc), exc
        assert snapshot(host.tmp) == before and host.commands == []
        return
    assert snapshot(host.tmp) == before, 'the host changed'
    assert host.commands == [], 'a command ran: %r' % host.commands
    if (option, form) in MATCHES_NOTHING:
        assert result.get('changed') is False and not result.get('failed')
        said = ' '.join(result['warnings'])
    else:
        assert result.get('failed') is True, result
        said = result['msg']
    assert 'Traceback' not in said and '\n' not in said
    name = NAMED_AS.get((option, form), option) if module is oom_score_adj else option
    assert name in said, '%r does not name %s' % (said, option)
