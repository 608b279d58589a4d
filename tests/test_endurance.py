"""Endurance: the board comes up usable on every cold and every warm boot, in a time that holds.

Long tests, chosen with ``-m endurance`` (or ``--power-cycles N`` / ``--reboots N``). Each
cycle is watched stage by stage (``hil.lab.bootcycle``) and written to the run folder as it
ends; the success rate is gated on its Wilson lower bound, the boot time on its 95th
percentile, and every failed cycle is named with the stage it stopped at and its console.
"""

import pytest

from hil.measure.endurance import cycle_summary

STAGE_SERIES_STAGES = ("uboot", "kernel", "init", "login", "network", "npu")


def _qualify_cycles(how, prefix, count, boot_cycler, endurance_log, progress, measure, model_limits,
                    record_property):
    failed = []
    with progress(count, f"{prefix.replace('_', ' ')}s") as bar:
        def done(cycle):
            endurance_log.append(cycle.to_dict())
            if not cycle.ok:
                failed.append(cycle.n)
            bar.update(cycle.n, f"{len(failed)} failed, " + (f"ready in {cycle.ready_s:.1f} s" if cycle.ok else
                                                            f"#{cycle.n} stopped at {cycle.stopped_at}"))

        cycles, aborted = boot_cycler.run(how, count, on_cycle=done)
    summary = cycle_summary(cycles)
    record_property(f"{prefix}_summary", summary.describe())
    record_property(f"{prefix}_log", str(endurance_log.path))
    cold, p = how == "power", summary.ready
    measure(f"{prefix}_success_pct", [100 * summary.rate] if summary.rate is not None else [], "%").within(
        model_limits.get("power_cycle_success_pct" if cold else "reboot_success_pct"))
    measure(f"{prefix}_success_low_pct", [100 * summary.low] if cycles else [], "%").within(
        model_limits.get("power_cycle_success_low_pct" if cold else "reboot_success_low_pct"))
    measure(f"{prefix}_ready_s", [c.ready_s for c in cycles if c.ok], "s").within(
        model_limits.get("power_cycle_ready_s" if cold else "reboot_ready_s"))
    measure(f"{prefix}_ready_p50_s", [p.p50] if p.p50 is not None else [], "s").within(
        model_limits.get("power_cycle_ready_p50_s" if cold else "reboot_ready_p50_s"))
    measure(f"{prefix}_ready_p95_s", [p.p95] if p.p95 is not None else [], "s").within(
        model_limits.get("power_cycle_ready_p95_s" if cold else "reboot_ready_p95_s"))
    measure(f"{prefix}_ready_max_s", [p.max] if p.max is not None else [], "s").within(
        model_limits.get("power_cycle_ready_max_s" if cold else "reboot_ready_max_s"))
    measure.series(f"{prefix}_stages", "s", [c.n for c in cycles],
                   {stage: [c.reached.get(stage) for c in cycles] for stage in STAGE_SERIES_STAGES}, x="cycle")
    failures = [c for c in cycles if not c.ok]
    for c in failures:
        record_property(f"{prefix}_failure_{c.n}", f"stopped at {c.stopped_at}: {c.reason}\n" + "\n".join(c.last_lines))
        for name, text in c.pstore.items():
            record_property(f"{prefix}_pstore_{c.n}_{name}", text[-2000:])
    details = "".join(f"\ncycle {c.n} stopped at {c.stopped_at}: {c.reason}\n    " + "\n    ".join(c.last_lines[-8:])
                      for c in failures[:5])
    if aborted:
        pytest.fail(f"stopped after {len(cycles)} of {count} cycles: {aborted}\n{summary.describe()}{details}",
                    pytrace=False)
    if measure.failures:
        pytest.fail("; ".join(measure.failures) + f"\n{summary.describe()}{details}", pytrace=False)


@pytest.mark.endurance("power_cycles")
@pytest.mark.figures("power_cycle_success_pct", "power_cycle_success_low_pct", "power_cycle_ready_s",
                     "power_cycle_ready_p50_s", "power_cycle_ready_p95_s", "power_cycle_ready_max_s")
def test_power_cycles(boot_cycler, endurance, endurance_log, progress, measure, model_limits, record_property):
    """Cold boots through the PDU: each must reach U-Boot, the kernel, init, login, SSH and both NPU cores."""
    _qualify_cycles("power", "power_cycle", endurance.power_cycles, boot_cycler, endurance_log, progress, measure,
                    model_limits, record_property)


@pytest.mark.endurance("reboots")
@pytest.mark.figures("reboot_success_pct", "reboot_success_low_pct", "reboot_ready_s",
                     "reboot_ready_p50_s", "reboot_ready_p95_s", "reboot_ready_max_s")
def test_reboots(boot_cycler, endurance, endurance_log, progress, measure, model_limits, record_property):
    """Warm reboots from the shell (a failed one is recovered with a power cycle, and counted failed)."""
    _qualify_cycles("reboot", "reboot", endurance.reboots, boot_cycler, endurance_log, progress, measure,
                    model_limits, record_property)


@pytest.mark.endurance("power_cuts")
@pytest.mark.figures("power_cut_synced_files_lost", "power_cut_fs_errors", "power_cut_unsynced_files_lost")
def test_power_cuts_during_writes(power_cutter, endurance, endurance_log, progress, measure, model_limits,
                                  record_property):
    """Power cut at a random moment while the board writes to its user partition: after the boot the
    filesystem is clean and every file synced before the cut is intact."""
    cuts = []
    with progress(endurance.power_cuts, "power cuts", unit="cuts") as bar:
        for n in range(1, endurance.power_cuts + 1):
            cut = power_cutter.cut(n)
            endurance_log.append(cut.to_dict())
            cuts.append(cut)
            record_property(f"power_cut_{n}", f"after {cut.cut_after_s:g} s: {len(cut.synced)} synced files, "
                                              f"{len(cut.unsynced)} unsynced ({', '.join(cut.unsynced_lost) or 'none'} "
                                              f"lost), filesystem check: {cut.fsck or 'not run'}")
            bar.update(n, f"{sum(len(c.lost_synced) for c in cuts)} synced files lost")
            if cut.error:
                break
    measure("power_cut_synced_files_lost", [sum(len(c.lost_synced) for c in cuts)], "files").within(model_limits)
    measure("power_cut_fs_errors", [sum(len(c.fs_errors) for c in cuts)], "errors").within(model_limits)
    measure("power_cut_unsynced_files_lost", [sum(len(c.unsynced_lost) for c in cuts)], "files").within(model_limits)
    problems = [f"cut {c.n} after {c.cut_after_s:g} s: " + "; ".join(
        ([c.error] if c.error else []) + [f"synced file {f}" for f in c.lost_synced] + c.fs_errors)
        for c in cuts if not c.ok]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
