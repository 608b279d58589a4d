"""Multimodal: the model describes the test pictures right, fast enough, in little enough memory."""

import pytest

from hil.kit import pictures, prompts

PICTURES = [p["file"] for p in pictures.load()]


def _run(runs, name):
    run = next(r for r in runs if r.picture["file"] == name)
    if run.error and not run.demo:
        pytest.fail(run.error, pytrace=False)
    return run


@pytest.mark.parametrize("picture", PICTURES)
def test_picture_answers(multimodal_inference, picture, golden, record_property):
    """Each answer holds the picture's keywords (the model's own, from its golden file, where it has them)."""
    run = _run(multimodal_inference, picture)
    record_property("picture", picture)
    problems = []
    for prompt, answer in zip(run.prompts, run.answers()):
        record_property(f"answer.{prompt.id}", answer)  # what `hil golden accept` records
        missing = prompts.missing_keywords(answer, golden.keywords(prompt, run.picture))
        if not answer or missing:
            problems.append(f"{prompt.text!r} -> {answer!r} lacks {missing}")
    if run.error:
        problems.append(f"the run failed: {run.error}")
    if problems and run.log_errors():
        problems.append(f"the runtime said: {run.log_errors()}")
    assert not problems, f"{picture}: " + "; ".join(problems)


@pytest.mark.parametrize("picture", PICTURES)
def test_picture_golden(multimodal_inference, picture, golden, no_golden):
    expected = golden.picture(picture)
    if expected is None:
        no_golden(picture)
    run = _run(multimodal_inference, picture)
    changed = [f"{p.id}: got {a!r}, golden {expected.get(p.id)!r}" for p, a in zip(run.prompts, run.answers())
               if golden.differs(a, expected.get(p.id, ""))]
    assert not changed, f"greedy answers changed for {picture}: " + "; ".join(changed)


@pytest.mark.figures("mm_init_ms", "encoder_ms", "mm_prefill_ms", "mm_decode_tokens_per_s", "mm_peak_memory_mib")
def test_multimodal_performance(multimodal_benchmark, multimodal_inference, measure, model_limits):
    """Encoder, prefill (image tokens + prompt), decode and memory: a warm-up, then --repeat turns."""
    bench = multimodal_benchmark
    if bench.failure:
        pytest.fail(bench.failure, pytrace=False)
    rejected = bench.rejected
    inits = [r.log["init_ms"] for r in (bench.run, *multimodal_inference) if r.demo is not None]
    measure("mm_init_ms", inits, "ms").within(model_limits.get("init_ms"))
    measure("encoder_ms", bench.encoder_ms, "ms", rejected=bench.encoder_rejected).within(model_limits)
    measure("mm_prefill_ms", bench.samples("prefill_ms"), "ms", rejected=rejected).within(model_limits)
    measure("mm_decode_tokens_per_s", bench.samples("generate_tokens_per_s"), "tok/s",
            rejected=rejected).within(model_limits)
    measure("mm_peak_memory_mib", bench.samples("peak_memory_mib"), "MiB", rejected=rejected).within(model_limits)
    assert not rejected, f"repetitions whose output was wrong, left out of the figures: {'; '.join(rejected)}"
