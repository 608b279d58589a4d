"""Text inference: the model answers the fixed prompts right, fast enough, in little enough memory."""

import pytest

from hil.kit import prompts

PROMPTS = prompts.text_prompts()


def _answer(run, prompt) -> str:
    if run.error and not run.demo:
        pytest.fail(run.error, pytrace=False)
    return run.answers()[run.prompts.index(prompt)]


@pytest.mark.parametrize("prompt", PROMPTS, ids=[p.id for p in PROMPTS])
def test_text_answer(text_inference, prompt, golden, record_property):
    """The answer holds the prompt's keywords (the model's own, from its golden file, where it has them)."""
    answer = _answer(text_inference, prompt)
    record_property(f"answer.{prompt.id}", answer)  # what `hil golden accept` records
    missing = prompts.missing_keywords(answer, golden.keywords(prompt))
    detail = f"; the run failed: {text_inference.error}" if text_inference.error else ""
    if text_inference.log_errors():
        detail += f"; the runtime said: {text_inference.log_errors()}"
    assert answer and not missing, f"answer to {prompt.text!r} lacks {missing}: {answer!r}{detail}"


@pytest.mark.parametrize("prompt", PROMPTS, ids=[p.id for p in PROMPTS])
def test_text_golden(text_inference, prompt, golden, no_golden):
    expected = golden.text(prompt.id)
    if expected is None:
        no_golden(prompt.id)
    answer = _answer(text_inference, prompt)
    assert not golden.differs(answer, expected), (
        f"greedy answer changed for {prompt.id}: got {answer!r}, golden {expected!r}")


@pytest.mark.figures("init_ms", "text_ttft_ms", "text_prefill_tokens_per_s", "text_decode_tokens_per_s",
                     "text_peak_memory_mib")
def test_text_performance(text_benchmark, text_inference, measure, model_limits):
    """Init, time to first token, prefill and decode speed and memory: a warm-up, then --repeat turns."""
    bench = text_benchmark
    if bench.failure:
        pytest.fail(bench.failure, pytrace=False)
    rejected = bench.rejected
    inits = [r.log["init_ms"] for r in (bench.run, text_inference) if r.demo is not None]
    measure("init_ms", inits, "ms").within(model_limits)
    measure("text_ttft_ms", bench.samples("prefill_ms"), "ms", rejected=rejected).within(model_limits)
    measure("text_prefill_tokens_per_s", bench.samples("prefill_tokens_per_s"), "tok/s",
            rejected=rejected).within(model_limits)
    measure("text_decode_tokens_per_s", bench.samples("generate_tokens_per_s"), "tok/s",
            rejected=rejected).within(model_limits)
    measure("text_peak_memory_mib", bench.samples("peak_memory_mib"), "MiB", rejected=rejected).within(model_limits)
    assert not rejected, f"repetitions whose output was wrong, left out of the figures: {'; '.join(rejected)}"
