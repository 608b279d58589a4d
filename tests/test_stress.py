"""Platform stress under NPU load: memory and DDR hold while the NPU works and the clocks move.

A long test, chosen with ``-m stress`` (or ``--stress-duration 1h``). stressapptest and memtester
run beside the reference prompt, asked session after session, while the NPU and DDR step
through their operating points (``hil.suite.stress``). Each tool's own verdict counts, every
answer is checked, and a kernel Oops, panic, rknpu error or NPU reset during the stress fails it.
"""

import pytest


@pytest.mark.stress("stress")
@pytest.mark.figures("stress_stressapptest_faults", "stress_memtester_failures", "stress_kernel_findings",
                     "stress_wrong_answers")
def test_platform_stress_under_npu_load(platform_stress, measure, model_limits, record_property):
    result = platform_stress.run()
    if result.error and result.stressapptest is None:
        pytest.fail(result.error, pytrace=False)
    sat = result.stressapptest
    record_property("stress_stressapptest", f"{sat.get('status')}: {sat.get('status_reason') or ''} "
                                            f"({sat.get('completed_mb')} MB at {sat.get('mb_per_s')} MB/s)")
    record_property("stress_memtester_runs", f"{len(result.memtester)} runs, "
                                             f"{sum(1 for r in result.memtester if r.get('status') == 'PASS')} passed")
    record_property("stress_devfreq_steps", str(result.steps))
    record_property("stress_sessions", str(len(result.sessions)))
    faults = result.stressapptest_faults
    measure("stress_stressapptest_faults", [faults] if faults is not None else [], "faults",
            rejected=[] if faults is not None else [f"no verdict: {sat.get('cut_short') or 'no Status line'}"]
            ).within(model_limits)
    measure("stress_memtester_failures", [result.memtester_failures], "failures",
            rejected=[] if result.memtester else ["memtester never completed a run"]).within(model_limits)
    measure("stress_kernel_findings", [len(result.findings)], "findings").within(model_limits)
    measure("stress_wrong_answers", [len(result.wrong_answers)], "answers").within(model_limits)
    problems = [f"{f.kind}: {f.line}" for f in result.findings[:5]] + result.wrong_answers[:5]
    if not result.memtester:
        problems.append("memtester never completed a run")
    if not result.steps:
        problems.append("the NPU and DDR clocks were never stepped (no writable devfreq node)")
    if result.error:
        problems.append(result.error)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
