"""Multimodal: the model describes the test pictures right, fast enough, in little enough memory."""

import statistics

import pytest

from hil import pictures, prompts

PICTURES = [p["file"] for p in pictures.load()]


def _run(runs, name):
    run = next(r for r in runs if r.picture["file"] == name)
    if run.error and not run.demo:
        pytest.fail(run.error, pytrace=False)
    return run


@pytest.mark.parametrize("picture", PICTURES)
def test_picture_answers(multimodal_inference, picture, record_property):
    run = _run(multimodal_inference, picture)
    problems = []
    for prompt, answer in zip(run.prompts, run.answers()):
        record_property(f"answer.{prompt.id}", answer)
        missing = prompts.missing_keywords(answer, run.picture[prompt.keywords_from])
        if not answer or missing:
            problems.append(f"{prompt.text!r} -> {answer!r} lacks {missing}")
    if run.error:
        problems.append(f"the run failed: {run.error}")
    if problems and run.log_errors():
        problems.append(f"the runtime said: {run.log_errors()}")
    assert not problems, f"{picture}: " + "; ".join(problems)


@pytest.mark.parametrize("picture", PICTURES)
def test_picture_golden(multimodal_inference, picture, suite_config):
    runtime = suite_config.kit.runtime.rkllm_runtime
    golden = ((prompts.golden(suite_config.model.name, runtime) or {}).get("image") or {}).get(picture)
    if golden is None:
        pytest.skip(f"no golden answers recorded for {suite_config.model.name} on runtime {runtime}")
    run = _run(multimodal_inference, picture)
    changed = [f"{p.id}: got {a!r}, golden {golden.get(p.id)!r}" for p, a in zip(run.prompts, run.answers())
               if prompts.normalize(a) != prompts.normalize(golden.get(p.id, ""))]
    assert not changed, f"greedy answers changed for {picture}: " + "; ".join(changed)


def test_multimodal_performance(multimodal_inference, figures):
    done = [r for r in multimodal_inference if r.demo is not None]
    if not done:
        pytest.fail(multimodal_inference[0].error if multimodal_inference else "no pictures", pytrace=False)
    first_turns = [r.log["runs"][0] for r in done if r.log["runs"]]
    assert first_turns, "no RKLLM performance table in any multimodal transcript"
    all_runs = [t for r in done for t in r.log["runs"]]
    figures.record("encoder_ms", done[0].encoder_ms, "ms")
    figures.record("mm_prefill_ms", statistics.median(t["prefill_ms"] for t in first_turns), "ms")
    figures.record("mm_decode_tokens_per_s", statistics.median(t["generate_tokens_per_s"] for t in all_runs), "tok/s")
    figures.record("mm_peak_memory_mib", max((t["peak_memory_mib"] or 0) for t in all_runs) or None, "MiB")
    figures.check()
