"""Boot: the board reaches a shell in time, and nothing went wrong on the way."""

import pytest

from hil.rockchip import rknpu


@pytest.mark.figures("boot_to_shell_s", "boot_attempts")
def test_boots_to_shell(booted, measure, model_limits):
    record = booted.record
    if booted.lab_fault:
        pytest.skip(f"not the board's failure: {booted.summary}")
    if booted.error:
        consoles = [console for _, console in (record.failures if record else [])]
        panics = [f for text in consoles for f in rknpu.scan_console(text) if f.kind == "panic"]
        cause = f"kernel panic during boot: {panics[0].line}" if panics else booted.summary
        pytest.fail(f"the board did not reach a shell: {cause}\n{booted.error}", pytrace=False)
    measure("boot_to_shell_s", record.seconds, "s").within(model_limits)
    measure("boot_attempts", record.attempts, "attempts").within(model_limits)
    if booted.flash_seconds is not None:
        measure("flash_and_boot_s", booted.flash_seconds, "s").within(model_limits)


def test_boot_console_clean(booted):
    """The console of the whole boot shows no panic, Oops, BUG or rknpu error."""
    if booted.record is None or not booted.record.console:
        pytest.skip(f"no successful boot to scan: {booted.summary}")
    findings = rknpu.scan_console(booted.record.console)
    assert not findings, "the boot console shows: " + "; ".join(f"{f.kind}: {f.line}" for f in findings)
