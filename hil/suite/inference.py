"""Inference on the board: configuration checks first, then the demos, with the NPU watched.

Each demo dialogue runs once per session (``text_inference``: every text prompt in one
``llm``/``demo`` session; ``multimodal_inference``: one ``demo`` session per picture, with
the English and the Chinese question), with the NPU load, clock and temperatures sampled, and
/proc/stat's per-CPU counters beside them (``InferenceRun.samples``; ``hil.lab.npu.session_cpu``
makes each CPU cluster's utilisation over a session of them).
The performance figures come from ``text_benchmark`` and ``multimodal_benchmark``: one
prompt sent a warm-up plus ``repeat`` times, each answer checked before its figures count.
Nothing runs while a configuration check that applies to it fails: a wrong EMBED_SIZE would
only segfault, a wrong platform would only fail to init, and the named check says more than
the crash would. A run that fails keeps its transcript, so the tests that read it can say
what the board printed.
"""

from __future__ import annotations

import attr

from hil.kit import prompts as prompt_set
from hil.kit.golden import GoldenAnswers
from hil.lab.rkllmdemo import DemoError
from hil.rockchip import checks, demo_log, rkllm_log

MAX_NEW_TOKENS = 128
MAX_CONTEXT_LEN = 512
TEMPLATE_TOKENS = 32  # chat template around each prompt (system prompt, role tags)
KINDS = ("text", "multimodal")


@attr.s
class InferenceRun:
    """One demo session: what was asked, the raw transcript and what it means."""

    kind = attr.ib()  # "text" or "multimodal"
    prompts = attr.ib()  # list of hil.kit.prompts.Prompt, in the order sent
    demo = attr.ib(default=None)  # DemoRun (None when the run could not start)
    error = attr.ib(default=None)  # str: why the session failed
    picture = attr.ib(default=None)  # picture manifest entry (multimodal)
    samples = attr.ib(factory=list)  # NPUSample list taken during the session
    encoder_ms = attr.ib(default=None)  # vision encoder time (from demo, or a separate imgenc run)

    @property
    def transcript(self) -> str:
        return self.demo.transcript if self.demo is not None else ""

    @property
    def log(self) -> dict:
        return rkllm_log.parse(self.transcript)

    def log_errors(self, limit: int = 3) -> str:
        """The first distinct error lines of the runtime, to say why an answer is wrong or missing."""
        errors = list(dict.fromkeys(self.log["errors"]))
        return "; ".join(errors[:limit]) + (f" (+{len(errors) - limit} more)" if len(errors) > limit else "")

    def answers(self) -> list[str]:
        """The answer text of each prompt, in order ('' where the session ended first)."""
        turns = demo_log.split_turns(self.transcript)
        out = [t.answer for t in turns]
        return out + [""] * (len(self.prompts) - len(out))


@attr.s
class Repetition:
    """One turn of a benchmark session: its answer, its performance table, and whether it counts."""

    index = attr.ib()  # 0 is the warm-up
    answer = attr.ib()
    perf = attr.ib()  # the turn's RKLLM performance table (hil.rockchip.rkllm_log run), or None
    problem = attr.ib(default=None)  # why this turn's figures are not accepted


@attr.s
class Benchmark:
    """The same prompt sent ``1 + repeat`` times in one session, as llama-bench does.

    The first turn warms caches and clocks and is never counted; a later turn counts only
    when its answer is right (keywords, and the golden answer where one is recorded), so a
    fast wrong answer never makes a figure.
    """

    run = attr.ib()  # InferenceRun
    reps = attr.ib(factory=list)
    encoder_ms = attr.ib(factory=list)  # vision encoder times, one per imgenc repetition (multimodal)
    encoder_rejected = attr.ib(factory=list)  # why an imgenc repetition gave no time
    warmup = attr.ib(default=1)

    @property
    def accepted(self) -> list[Repetition]:
        return [r for r in self.reps[self.warmup:] if r.problem is None]

    @property
    def rejected(self) -> list[str]:
        return [f"repetition {r.index}: {r.problem}" for r in self.reps[self.warmup:] if r.problem]

    def samples(self, key: str) -> list[float]:
        return [r.perf[key] for r in self.accepted if r.perf.get(key) is not None]

    @property
    def failure(self) -> str | None:
        """Why no repetition could count at all (the run did not start, or died at once)."""
        if self.run.demo is None:
            return self.run.error
        if not self.reps:
            return self.run.error or "the session gave no answer"
        return None


def repetitions(run: InferenceRun, keywords, golden: str | None) -> list[Repetition]:
    """Each turn of a benchmark session, with why its figures do not count (if they do not)."""
    tables = run.log["runs"] if run.demo is not None else []
    reps = []
    for i, answer in enumerate(run.answers() if run.demo is not None else []):
        perf = tables[i] if i < len(tables) else None
        problem = None
        missing = prompt_set.missing_keywords(answer, keywords)
        if not answer:
            problem = "no answer" + (f" ({run.error})" if run.error else "")
        elif missing:
            problem = f"answer lacks {missing}: {answer[:120]!r}"
        elif GoldenAnswers.differs(answer, golden):
            problem = f"answer differs from the golden answer: {answer[:120]!r}"
        elif perf is None:
            problem = "no performance table for this turn (RKLLM_LOG_LEVEL=1 set?)"
        reps.append(Repetition(index=i, answer=answer, perf=perf, problem=problem))
    return reps


def prompt_tokens(text: str) -> int:
    """An upper bound of the prompt's tokens without the model's tokenizer: one per UTF-8 byte."""
    return len(text.replace("<image>", "").encode("utf-8")) + TEMPLATE_TOKENS


def demo_build(runtime) -> checks.DemoBuild:
    """The demo's EMBED_SIZE: as the bundle's runtime.yaml declares it, else as its SDK version built it."""
    libs = {"rkllm_runtime": runtime.rkllm_runtime, "source": runtime.sources.get("rkllm_runtime")}
    if runtime.demo_embed_size is not None:
        return checks.DemoBuild(version=runtime.demo_version, embed_size=int(runtime.demo_embed_size), **libs)
    return checks.DemoBuild.for_version(runtime.demo_version, **libs)


def board_info(compatible: list[str], npu_cores: int) -> checks.BoardInfo:
    """What the configuration checks hold the model and demo against: the SoC from the device
    tree's last ``rockchip,rkNNNN`` and the number of NPU cores in the driver's load file."""
    socs = [c.removeprefix("rockchip,").upper() for c in compatible if c.startswith("rockchip,rk")]
    return checks.BoardInfo(soc=socs[-1] if socs else " ".join(compatible) or "unknown SoC", npu_cores=npu_cores)


@attr.s
class ModelProbe:
    """The model loaded once on the board by the bundle's own demo, before any inference:
    what a real ``.rkllm`` does not tell the host (platform, cores, context limit, dtype) the
    runtime prints at init, and its refusal is the clearest word on a wrong model."""

    run = attr.ib()  # DemoRun or None
    error = attr.ib(default=None)  # str: why the demo did not load the model

    @property
    def log(self) -> dict:
        return rkllm_log.parse(self.run.transcript if self.run is not None else "")

    @property
    def refused(self) -> str | None:
        """The runtime's own words when the model did not load (None when it did)."""
        if self.error is None:
            return None
        return rkllm_log.init_failure(self.log) or self.error

    def model_info(self, host: checks.ModelInfo) -> checks.ModelInfo:
        """The host's facts (from the files) with the runtime's."""
        log = self.log

        def num(key):
            return int(log[key]) if log.get(key) is not None else None

        return attr.evolve(host, target_platform=log.get("target_platform"), npu_core_num=num("npu_core_num"),
                           max_context_limit=num("max_context_limit"), refused=self.refused)

    def board(self, board: checks.BoardInfo) -> checks.BoardInfo:
        return attr.evolve(board, rkllm_runtime=self.log.get("runtime_version"))


def probe_model(demo, layout, pictures) -> ModelProbe:
    """Load the model with the bundle's demo and end it at the first prompt (a text dialogue
    of no turns; from 1.2.2 the demo needs the encoder and a picture for that, too)."""
    try:
        run = demo.run_text(layout.demo_dir, layout.llm, [], max_new_tokens=MAX_NEW_TOKENS,
                            max_context_len=MAX_CONTEXT_LEN, image=layout.picture(pictures[0]["file"]),
                            encoder=layout.vision)
    except DemoError as e:
        return ModelProbe(run=e.run, error=str(e))
    except ValueError as e:  # no encoder for a demo that needs one
        return ModelProbe(run=None, error=str(e))
    return ModelProbe(run=run)


def config_problems(suite, board: checks.BoardInfo, rknn_core_num: int,
                    probe: ModelProbe | None = None) -> dict[str, list]:
    """The configuration problems that stop each kind of run, by kind: the files' facts, and
    the runtime's from ``probe`` (the model loaded once on the board)."""
    model = suite.model.info
    if probe is not None:
        model, board = probe.model_info(model), probe.board(board)
    out = {}
    for kind in KINDS:
        asked = prompt_set.text_prompts() if kind == "text" else prompt_set.image_prompts()
        run = checks.RunConfig(rknn_core_num=rknn_core_num, max_context_len=MAX_CONTEXT_LEN,
                               max_new_tokens=MAX_NEW_TOKENS, prompt_tokens=max(prompt_tokens(p.text) for p in asked),
                               image_tokens=model.image_tokens if kind == "multimodal" else 0)
        build = demo_build(suite.runtime) if kind == "multimodal" else checks.DemoBuild(
            rkllm_runtime=suite.runtime.rkllm_runtime, source=suite.runtime.sources.get("rkllm_runtime"))
        out[kind] = checks.check_run(board, model, run, build)
    return out


def blocked(problems) -> str | None:
    """Why a kind of run is not started: its failed configuration checks, or None."""
    if problems:
        return "not run, configuration check failed: " + "; ".join(f"[{p.check}] {p.message}" for p in problems)
    return None


@attr.s(eq=False)
class InferenceRunner:
    """Runs the demos of one deployed bundle on one board, with the NPU sampled.

    ``demo`` is the board's RKLLMDemoDriver, already told the bundle's demo version and the
    board's SoC; ``npu`` its NPUDriver; ``layout`` where the bundle lies on the board;
    ``problems`` the configuration checks' findings per kind (a kind with findings never runs).
    """

    demo = attr.ib()
    npu = attr.ib()
    layout = attr.ib()  # hil.kit.bundle.DeployLayout
    pictures = attr.ib()  # picture manifest entries
    golden = attr.ib()  # GoldenAnswers
    problems = attr.ib(factory=dict)

    # --- one session ---------------------------------------------------------------------
    def _session(self, run: InferenceRun, start) -> InferenceRun:
        with self.npu.sample() as sampler:
            try:
                run.demo = start([p.text for p in run.prompts])
            except DemoError as e:
                run.demo, run.error = e.run, str(e)
        run.samples = list(sampler.samples)
        return run

    def text_session(self, run: InferenceRun) -> InferenceRun:
        """Send ``run.prompts`` through one text dialogue of the demo."""
        # from 1.2.2 there is no `llm`: text prompts go through `demo`, which needs a picture and an encoder
        first_picture = self.layout.picture(self.pictures[0]["file"])
        return self._session(run, lambda texts: self.demo.run_text(
            self.layout.demo_dir, self.layout.llm, texts, max_new_tokens=MAX_NEW_TOKENS,
            max_context_len=MAX_CONTEXT_LEN, image=first_picture, encoder=self.layout.vision))

    def multimodal_session(self, run: InferenceRun) -> InferenceRun:
        """Ask ``run.prompts`` about ``run.picture`` in one ``demo`` session."""
        self._session(run, lambda texts: self.demo.run_multimodal(
            self.layout.demo_dir, self.layout.picture(run.picture["file"]), self.layout.vision, self.layout.llm,
            texts, max_new_tokens=MAX_NEW_TOKENS, max_context_len=MAX_CONTEXT_LEN))
        run.encoder_ms = demo_log.parse(run.transcript).encoder_ms
        return run

    # --- what the tests read -------------------------------------------------------------
    def text_inference(self) -> InferenceRun:
        run = InferenceRun(kind="text", prompts=prompt_set.text_prompts(), error=blocked(self.problems.get("text")))
        return run if run.error else self.text_session(run)

    def multimodal_inference(self) -> list[InferenceRun]:
        why = blocked(self.problems.get("multimodal"))
        runs = []
        for picture in self.pictures:
            run = InferenceRun(kind="multimodal", prompts=prompt_set.image_prompts(), picture=picture, error=why)
            runs.append(run if why else self.multimodal_session(run))
        return runs

    def text_benchmark(self, repeat: int) -> Benchmark:
        prompt = prompt_set.text_prompts()[0]
        run = InferenceRun(kind="text", prompts=[prompt] * (1 + repeat), error=blocked(self.problems.get("text")))
        if not run.error:
            self.text_session(run)
        return Benchmark(run=run, reps=repetitions(run, self.golden.keywords(prompt), self.golden.text(prompt.id)))

    def multimodal_benchmark(self, repeat: int) -> Benchmark:
        picture, prompt = self.pictures[0], prompt_set.image_prompts()[0]
        turns = 1 + repeat
        run = InferenceRun(kind="multimodal", prompts=[prompt] * turns, picture=picture,
                           error=blocked(self.problems.get("multimodal")))
        if run.error:
            return Benchmark(run=run)
        self.multimodal_session(run)
        bench = Benchmark(run=run, reps=repetitions(run, self.golden.keywords(prompt, picture),
                                                    self.golden.image(picture["file"], prompt.id)))
        if run.demo is not None and bench.accepted:
            self._encoder_times(bench, picture, turns)
        return bench

    def _encoder_times(self, bench: Benchmark, picture: dict, turns: int) -> None:
        """The encoder runs once per demo session: time it on its own, as Rockchip's imgenc does."""
        for i in range(turns):
            try:
                enc = self.demo.run_imgenc(self.layout.demo_dir, self.layout.vision,
                                           self.layout.picture(picture["file"]))
            except DemoError as e:
                bench.encoder_rejected.append(f"imgenc run {i}: {e}")
                break
            ms = demo_log.parse(enc.transcript).encoder_ms
            if ms is None:
                bench.encoder_rejected.append(f"imgenc run {i}: no encoder time in its output")
            elif i >= bench.warmup:
                bench.encoder_ms.append(ms)
