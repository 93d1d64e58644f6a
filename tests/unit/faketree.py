"""The one builder of fake kernel trees for the unit tests.

Files under an injectable root, the way the readers see /proc, /sys, /etc and /var/log:

    write(tmp_path, '/proc/meminfo', 'MemTotal: 2048000 kB\n')      # parents made, real path back
    write(tmp_path, '/var/log/kern.log', text, mtime=1700000000)     # with a chosen mtime
    tree(tmp_path, {'/run/.containerenv': '', '/proc/1/environ': ''})  # many at once, root back

and, on top of it, a fake /sys/fs/cgroup with the kernel's write rules (``FakeCgroupfs``):
a v1-only, hybrid (v1 memory + cgroup2 without memory) or v2 host, standing in for the three
places where the real kernel acts on its own: mkdir (fills the directory with interface files),
writes (page rounding, '-1'/'max', memsw >= limit, +memory rules, cgroup.procs appends) and rmdir
(a cgroup directory full of interface files is removable when empty of processes and children).

    fake = FakeCgroupfs(tmp_path, 'v2')
    fake.cgroup('app', usage=300 << 20, procs=[4242])
    fake.patch(monkeypatch)            # cgroups.make_dir / write_file / remove_dir go through it
"""
import errno
import os
import shutil

from ansible_collections.oomguard.memory.plugins.module_utils import cgroups


def write(root, path, text, mtime=None):
    """Write ``text`` at the absolute kernel ``path`` under ``root``; return the real path.

    ``text`` may be bytes (written as is). ``mtime`` (epoch seconds) sets both atime and mtime.
    """
    full = os.path.join(str(root), str(path).lstrip('/'))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'wb' if isinstance(text, bytes) else 'w') as handle:
        handle.write(text)
    if mtime is not None:
        os.utime(full, (mtime, mtime))
    return full


# The kernel's flag of a kernel thread in /proc/PID/stat (field 9).
PF_KTHREAD = 0x00200000


def process(root, pid, comm, cgroup_line, ppid=1, adj=0, kernel=False, rss_kb=None, exe='/usr/bin'):
    """A fake /proc/PID under ``root``: stat (state S, start time 100), cgroup (``cgroup_line``,
    e.g. ``0::/system.slice/x.service``), oom_score_adj, cmdline (``exe``/``comm``), and status
    with VmRSS when ``rss_kb`` is given."""
    fields = ['S', str(ppid), str(pid), str(pid), '0', '-1', str(PF_KTHREAD if kernel else 0)] + ['0'] * 12 + ['100', '0', '0']
    write(root, '/proc/%d/stat' % pid, '%d (%s) %s\n' % (pid, comm, ' '.join(fields)))
    if rss_kb is not None:
        write(root, '/proc/%d/status' % pid, 'VmRSS:\t%d kB\n' % rss_kb)
    write(root, '/proc/%d/oom_score_adj' % pid, '%d\n' % adj)
    write(root, '/proc/%d/cgroup' % pid, '%s\n' % cgroup_line)
    write(root, '/proc/%d/cmdline' % pid, '%s/%s\0' % (exe, comm))


def tree(root, files):
    """Write every ``{path: text}`` of ``files`` under ``root``; return ``root`` as a string."""
    for path, text in files.items():
        write(root, path, text)
    return str(root)


PAGE = 4096
V1_MAX = (2 ** 63 - 1) // PAGE * PAGE
MEM_TOTAL_KB = 16 * 1024 * 1024

V1_ROOT_ONLY = ('cgroup.sane_behavior', 'release_agent')


class FakeCgroupfs(object):
    def __init__(self, base, layout, swap_accounting=True, v2_swap=True):
        self.base = str(base)
        self.layout = layout
        self.swap_accounting = swap_accounting
        self.v2_swap = v2_swap
        self.writes = []
        os.makedirs(self.path('proc'))
        os.makedirs(self.path('run'), exist_ok=True)  # every real host has it; the module keeps its record below it
        mounts = ['sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0',
                  'proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0']
        if layout in ('v1', 'hybrid'):
            mounts.append('tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0')
            for controller in ('cpu', 'memory', 'pids'):
                mounts.append('cgroup /sys/fs/cgroup/%s cgroup rw,relatime,%s 0 0' % (controller, controller))
                os.makedirs(self.path('sys/fs/cgroup', controller))
            self.memory_root = self.path('sys/fs/cgroup/memory')
            self._fill_v1(self.memory_root, root=True)
            if layout == 'hybrid':
                mounts.append('cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0')
                unified = self.path('sys/fs/cgroup/unified')
                os.makedirs(unified)
                self._put(unified, 'cgroup.controllers', '\n')
                self._put(unified, 'cgroup.subtree_control', '\n')
                self._put(unified, 'cgroup.procs', '')
        elif layout == 'v2':
            mounts.append('cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0')
            self.memory_root = self.path('sys/fs/cgroup')
            os.makedirs(self.memory_root)
            self._put(self.memory_root, 'cgroup.controllers', 'cpuset cpu io memory hugetlb pids rdma misc\n')
            self._put(self.memory_root, 'cgroup.subtree_control', '\n')
            self._put(self.memory_root, 'cgroup.procs', '1\n')
            self._put(self.memory_root, 'memory.stat', 'anon 0\n')
        else:
            raise ValueError(layout)
        self._put(self.path('proc'), 'mounts', '\n'.join(mounts) + '\n')
        self._put(self.path('proc'), 'meminfo', 'MemTotal:       %d kB\nMemFree:        %d kB\n'
                  % (MEM_TOTAL_KB, MEM_TOTAL_KB // 2))
        self.add_process(1)

    # ---- building the tree

    def path(self, *parts):
        return os.path.join(self.base, *parts)

    def _put(self, directory, name, text):
        write(directory, name, text)

    def read(self, rel, name):
        with open(os.path.join(self.memory_root, rel, name)) as handle:
            return handle.read()

    def add_process(self, pid, comm='fake', kernel=False):
        """/proc/<pid>/stat as proc(5) lays it out; kernel=True sets PF_KTHREAD with kthreadd as parent."""
        os.makedirs(self.path('proc', str(pid)), exist_ok=True)
        fields = ['S', '2' if kernel else '1', str(pid), str(pid), '0', '-1',
                  str(0x00200000 if kernel else 0)] + ['0'] * 15
        self._put(self.path('proc', str(pid)), 'stat', '%d (%s) %s\n' % (pid, comm, ' '.join(fields)))

    def _fill_v1(self, directory, root=False):
        for name in ('memory.limit_in_bytes', 'memory.soft_limit_in_bytes'):
            self._put(directory, name, '%d\n' % V1_MAX)
        if self.swap_accounting:
            self._put(directory, 'memory.memsw.limit_in_bytes', '%d\n' % V1_MAX)
            self._put(directory, 'memory.memsw.usage_in_bytes', '0\n')
        self._put(directory, 'memory.usage_in_bytes', '0\n')
        self._put(directory, 'memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n')
        self._put(directory, 'cgroup.procs', '')
        self._put(directory, 'tasks', '')
        if root:
            for name in V1_ROOT_ONLY:
                self._put(directory, name, '0\n')

    def _fill_v2(self, directory):
        parent = os.path.dirname(directory)
        offered = self.read_abs(parent, 'cgroup.subtree_control').split()
        self._put(directory, 'cgroup.controllers', ' '.join(offered) + '\n')
        self._put(directory, 'cgroup.subtree_control', '\n')
        self._put(directory, 'cgroup.procs', '')
        self._put(directory, 'cgroup.events', 'populated 0\nfrozen 0\n')
        if 'memory' in offered:
            self._fill_v2_memory(directory)

    def _fill_v2_memory(self, directory):
        for name in ('memory.max', 'memory.high'):
            self._put(directory, name, 'max\n')
        for name in ('memory.low', 'memory.min', 'memory.current', 'memory.oom.group'):
            self._put(directory, name, '0\n')
        if self.v2_swap:
            self._put(directory, 'memory.swap.max', 'max\n')
            self._put(directory, 'memory.swap.current', '0\n')
        self._put(directory, 'memory.events', 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n')

    def read_abs(self, directory, name):
        with open(os.path.join(directory, name)) as handle:
            return handle.read()

    def cgroup(self, rel, usage=0, procs=(), enable=True, **files):
        """Make an existing cgroup (parents too). On v2 ``enable`` turns on +memory in the
        parents' subtree_control first. ``files`` sets interface files: memory_max='64M' style
        names with '.' written as '_' are not used; pass {'memory.max': '67108864'} via files."""
        parts = rel.split('/')
        current = self.memory_root
        for part in parts:
            if self.layout == 'v2' and enable:
                control = self.read_abs(current, 'cgroup.subtree_control').split()
                if 'memory' not in control:
                    self._put(current, 'cgroup.subtree_control', ' '.join(control + ['memory']) + '\n')
            current = os.path.join(current, part)
            if not os.path.isdir(current):
                os.mkdir(current)
                if self.layout == 'v2':
                    self._fill_v2(current)
                else:
                    self._fill_v1(current)
        usage_file = 'memory.current' if self.layout == 'v2' else 'memory.usage_in_bytes'
        if os.path.exists(os.path.join(current, usage_file)):
            self._put(current, usage_file, '%d\n' % usage)
        self._put(current, 'cgroup.procs', ''.join('%d\n' % p for p in procs))
        for pid in procs:
            self.add_process(pid)
        for name, value in files.items():
            self._put(current, name, '%s\n' % value)
        return current

    # ---- the kernel's part

    def patch(self, monkeypatch):
        monkeypatch.setattr(cgroups, 'make_dir', self.mkdir)
        monkeypatch.setattr(cgroups, 'write_file', self.write)
        monkeypatch.setattr(cgroups, 'remove_dir', self.rmdir)

    def mkdir(self, path):
        if os.path.exists(path):
            raise cgroups.CgroupError('cannot create cgroup %s: File exists' % path)
        os.mkdir(path)
        if self.layout == 'v2':
            self._fill_v2(path)
        else:
            self._fill_v1(path)

    def rmdir(self, path):
        if self.read_abs(path, 'cgroup.procs').split():
            raise cgroups.CgroupError('cannot remove cgroup %s: Device or resource busy' % path)
        if any(os.path.isdir(os.path.join(path, e)) for e in os.listdir(path)):
            raise cgroups.CgroupError('cannot remove cgroup %s: Device or resource busy' % path)
        shutil.rmtree(path)

    def _refuse(self, path, text, err):
        raise cgroups.CgroupError('the kernel refused %r in %s: %s' % (text, path, os.strerror(err)))

    def write(self, path, text):
        if not os.path.exists(path):
            raise cgroups.CgroupError('cannot open %s for writing: %s' % (path, os.strerror(errno.ENOENT)))
        self.writes.append((os.path.relpath(path, self.memory_root), text))
        directory, name = os.path.split(path)
        if name == 'cgroup.procs':
            if not os.path.isdir(self.path('proc', text.strip())):
                self._refuse(path, text, errno.ESRCH)
            if self._is_kernel_thread(text.strip()):
                self._refuse(path, text, errno.EINVAL)
            # A process is in one cgroup of a hierarchy: moving it takes it out of the old one.
            for where, _dirs, files in os.walk(self.memory_root):
                if 'cgroup.procs' in files and os.path.join(where, 'cgroup.procs') != path:
                    old = self.read_abs(where, 'cgroup.procs').split()
                    if text.strip() in old:
                        self._put(where, 'cgroup.procs', ''.join('%s\n' % p for p in old if p != text.strip()))
            with open(path, 'a') as handle:
                handle.write(text.strip() + '\n')
            return
        if name == 'cgroup.subtree_control':
            return self._subtree_control(directory, path, text)
        if name == 'memory.oom.group':
            if text.strip() not in ('0', '1'):
                self._refuse(path, text, errno.EINVAL)
            return self._put(directory, name, text.strip() + '\n')
        value = self._parse_limit(path, text)
        if self.layout == 'v2':
            return self._put(directory, name, 'max\n' if value is None else '%d\n' % value)
        stored = V1_MAX if value is None else value
        limit = int(self.read_abs(directory, 'memory.limit_in_bytes'))
        memsw_path = os.path.join(directory, 'memory.memsw.limit_in_bytes')
        memsw = int(self.read_abs(directory, 'memory.memsw.limit_in_bytes')) if os.path.exists(memsw_path) else None
        if name == 'memory.limit_in_bytes':
            if memsw is not None and stored > memsw:
                self._refuse(path, text, errno.EINVAL)
            if stored < int(self.read_abs(directory, 'memory.usage_in_bytes')):
                self._refuse(path, text, errno.EBUSY)
        if name == 'memory.memsw.limit_in_bytes' and stored < limit:
            self._refuse(path, text, errno.EINVAL)
        self._put(directory, name, '%d\n' % stored)

    def _is_kernel_thread(self, pid):
        with open(self.path('proc', pid, 'stat')) as handle:
            fields = handle.read().rsplit(')', 1)[1].split()
        return len(fields) > 6 and int(fields[6]) & 0x00200000 != 0

    def _parse_limit(self, path, text):
        text = text.strip()
        if self.layout == 'v2' and text == 'max' or self.layout != 'v2' and text == '-1':
            return None
        try:
            value = int(text)
        except ValueError:
            self._refuse(path, text, errno.EINVAL)
        if value < 0:
            self._refuse(path, text, errno.EINVAL)
        return min(value // PAGE * PAGE, V1_MAX)

    def _subtree_control(self, directory, path, text):
        offered = self.read_abs(directory, 'cgroup.controllers').split()
        control = self.read_abs(directory, 'cgroup.subtree_control').split()
        for word in text.split():
            controller = word[1:]
            if controller not in offered:
                self._refuse(path, text, errno.ENOENT)
            if directory != self.memory_root and self.read_abs(directory, 'cgroup.procs').split():
                self._refuse(path, text, errno.EBUSY)
            if word.startswith('+') and controller not in control:
                control.append(controller)
        self._put(directory, 'cgroup.subtree_control', ' '.join(control) + '\n')
        for entry in os.listdir(directory):
            child = os.path.join(directory, entry)
            if os.path.isdir(child):
                self._put(child, 'cgroup.controllers', ' '.join(control) + '\n')
                if 'memory' in control and not os.path.exists(os.path.join(child, 'memory.max')):
                    self._fill_v2_memory(child)
