"""runaway through systemd for real, in the VM testbed (systemd as PID 1): a process of a service
is stopped with `systemctl kill` (SIGTERM for the whole unit) or the unit is restarted, read back
from systemd itself (MainPID, ActiveState)."""
import uuid

import pytest

M = 'oomguard.memory.runaway'
HOG = 'import time; b = bytearray(32 << 20); b[::4096] = b"x" * (len(b) // 4096); time.sleep(900)'


@pytest.mark.slow
def test_unit_process_is_killed_then_restarted_through_systemctl(vm):
    unit = 'ogr-%s.service' % uuid.uuid4().hex[:8]
    path = '/run/systemd/system/%s' % unit
    text = '[Service]\nExecStart=/usr/bin/python3 -c \'%s\'\n' % HOG
    rc, out = vm.exec(['sh', '-c', 'cat > %s <<"EOF"\n%sEOF\nsystemctl daemon-reload && systemctl start %s && sleep 1 '
                       '&& systemctl show -p MainPID --value %s' % (path, text, unit, unit)])
    assert rc == 0, out
    first = int(out.split()[-1])
    try:
        pattern = '^%s$' % unit.replace('.', r'\.')
        restarted = vm.module(M, unit=pattern, min_rss='16M', min_age=0)
        assert restarted['changed'] is True, restarted
        assert restarted['stopped']['pid'] == first and restarted['stopped']['method'] == 'systemctl'
        assert restarted['stopped']['commands'] == ['systemctl restart %s' % unit]
        rc, out = vm.exec(['systemctl', 'show', '-p', 'MainPID', '--value', unit])
        second = int(out.strip())
        assert second not in (0, first)
        killed = vm.module(M, unit=pattern, min_rss='16M', min_age=0, unit_action='kill', grace=3)
        assert killed['stopped']['pid'] == second
        assert killed['stopped']['commands'][0] == 'systemctl kill --kill-whom=all --signal=SIGTERM %s' % unit
        rc, out = vm.exec(['systemctl', 'show', '-p', 'ActiveState', '--value', unit])
        assert out.strip() in ('inactive', 'failed')
    finally:
        vm.exec(['sh', '-c', 'systemctl stop %s; rm -f %s; systemctl daemon-reload; systemctl reset-failed %s; true'
                 % (unit, path, unit)])
