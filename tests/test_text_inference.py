"""Text inference: the model answers the fixed prompts right, fast enough, in little enough memory."""

import pytest

from hil import prompts

PROMPTS = prompts.text_prompts()


def _answer(run, prompt) -> str:
    if run.error and not run.demo:
        pytest.fail(run.error, pytrace=False)
    return run.answers()[run.prompts.index(prompt)]


@pytest.mark.parametrize("prompt", PROMPTS, ids=[p.id for p in PROMPTS])
def test_text_answer(text_inference, prompt, record_property):
    answer = _answer(text_inference, prompt)
    record_property("answer", answer)
    missing = prompts.missing_keywords(answer, prompt.keywords)
    detail = f"; the run failed: {text_inference.error}" if text_inference.error else ""
    if text_inference.log_errors():
        detail += f"; the runtime said: {text_inference.log_errors()}"
    assert answer and not missing, f"answer to {prompt.text!r} lacks {missing}: {answer!r}{detail}"


@pytest.mark.parametrize("prompt", PROMPTS, ids=[p.id for p in PROMPTS])
def test_text_golden(text_inference, prompt, suite_config):
    runtime = suite_config.kit.runtime.rkllm_runtime
    golden = (prompts.golden(suite_config.model.name, runtime) or {}).get("text", {}).get(prompt.id)
    if golden is None:
        pytest.skip(f"no golden answer recorded for {suite_config.model.name} on runtime {runtime}")
    answer = _answer(text_inference, prompt)
    assert prompts.normalize(answer) == prompts.normalize(golden), (
        f"greedy answer changed for {prompt.id}: got {answer!r}, golden {golden!r}")


def test_text_performance(text_inference, figures):
    if text_inference.error and not text_inference.demo:
        pytest.fail(text_inference.error, pytrace=False)
    log = text_inference.log
    runs = log["runs"]
    assert runs, f"no RKLLM performance table in the transcript (RKLLM_LOG_LEVEL=1 set?); errors: {log['errors']}"
    figures.record("init_ms", log["init_ms"], "ms")
    figures.record("text_prefill_tokens_per_s", _median(r["prefill_tokens_per_s"] for r in runs), "tok/s")
    figures.record("text_decode_tokens_per_s", _median(r["generate_tokens_per_s"] for r in runs), "tok/s")
    figures.record("text_peak_memory_mib", max((r["peak_memory_mib"] or 0) for r in runs) or None, "MiB")
    figures.check()


def _median(values):
    import statistics

    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
