"""Boot: the board reaches a shell on its serial console."""

import time


def test_boots_to_shell(target, record_property):
    power = target.get_driver("PowerProtocol")
    target.deactivate(target.get_driver("ShellDriver", activate=False))
    power.cycle()
    start = time.monotonic()
    shell = target.get_driver("ShellDriver")
    record_property("boot_to_shell_s", round(time.monotonic() - start, 2))
    out = shell.run_check("uname -m; cat /proc/device-tree/compatible 2>/dev/null | tr '\\0' ' '")
    assert out[0] == "aarch64", f"not an arm64 board: uname -m says {out[0]!r}"
