"""Read the kernel's own view of what the integration tests did (not through Ansible)."""


def vmstat_oom_kill():
    """The kernel's count of OOM kills since boot (/proc/vmstat oom_kill), or None."""
    with open('/proc/vmstat') as handle:
        for line in handle:
            if line.startswith('oom_kill '):
                return int(line.split()[1])
    return None
