"""The inference soak: one demo session kept busy for hours, every answer checked, the board
watched in windows, so that what only time shows is measured: memory that grows per turn
(rknn-llm #529), throughput that falls as the SoC heats, a clock that throttles.

The session alternates the reference text prompt and the reference question about the first
picture (a multimodal turn, where the demo build takes both in one session; text only with an
``llm`` program), for ``duration_s``. Each answer is checked as the benchmarks check theirs
(keywords, and the golden answer where one is recorded); a wrong answer ends the soak at that
turn, which is named. Every ``window_s`` the board is read once (``hil.lab.boardstate``: the
demo's resident set, CMA and DMA-buf in use, clocks, temperatures, the CPU counters) and the
window, with the median decode and prefill rate and the runtime's peak memory of its turns and
each CPU cluster's use since the window before, is handed to ``on_window`` at once, so a killed
soak keeps every finished window. The NPU sampler runs
through the whole session; its clock readings say when throttling began.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import attr

from hil.kit import prompts as prompt_set
from hil.kit.golden import GoldenAnswers
from hil.lab.boardstate import BoardState, parse_snapshot, snapshot_command
from hil.lab.rkllmdemo import DemoError, has_llm
from hil.measure import endurance
from hil.rockchip import cpustat, demo_log, rkllm_log
from hil.suite.inference import MAX_CONTEXT_LEN, MAX_NEW_TOKENS, InferenceRunner

#: Windows per soak when none is given: enough points for a slope, few enough to read.
WINDOWS = 20
MIN_WINDOW_S = 5.0


@attr.s(frozen=True)
class SoakTurn:
    n = attr.ib()
    t = attr.ib()  # s since the soak began, at the end of the turn
    prompt_id = attr.ib()
    answer = attr.ib()
    problem = attr.ib(default=None)  # why the answer is wrong
    decode_tps = attr.ib(default=None)
    prefill_tps = attr.ib(default=None)
    peak_memory_mib = attr.ib(default=None)


@attr.s(frozen=True)
class SoakWindow:
    index = attr.ib()
    t0 = attr.ib()
    t1 = attr.ib()
    turns = attr.ib()
    decode_tps = attr.ib(default=None)  # median of the window's turns
    prefill_tps = attr.ib(default=None)
    peak_memory_mib = attr.ib(default=None)  # highest the runtime reported in the window
    board = attr.ib(factory=BoardState)  # read at the window's end
    cpu_busy_pct = attr.ib(factory=dict)  # cluster -> % busy since the reading before (None: not measurable)

    @property
    def t(self) -> float:
        """The window's end, where its board reading was taken."""
        return self.t1

    def to_dict(self) -> dict:
        return {**attr.asdict(self, recurse=False), "board": self.board.to_dict()}


@attr.s
class SoakResult:
    turns = attr.ib(factory=list)
    windows = attr.ib(factory=list)
    wrong = attr.ib(default=None)  # the first SoakTurn with a wrong answer
    error = attr.ib(default=None)  # why the session ended before its time
    npu_samples = attr.ib(factory=list)  # (s since the soak began, NPU Hz) from the sampler
    seconds = attr.ib(default=0.0)

    def series(self, pick: Callable[[SoakWindow], float | None]) -> tuple[list[float], list[float]]:
        """(window ends, values) of the windows where ``pick`` has a value."""
        pairs = [(w.t, pick(w)) for w in self.windows if pick(w) is not None]
        return [t for t, _ in pairs], [v for _, v in pairs]

    def drift(self, pick) -> endurance.Drift:
        return endurance.drift(*self.series(pick))

    def throttle_onset_s(self, locked_hz: float | None) -> float | None:
        if not locked_hz or not self.npu_samples:
            return None
        times, freqs = zip(*self.npu_samples)
        return endurance.first_throttle(times, freqs, locked_hz)


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


@attr.s(eq=False)
class Soak:
    """``run()`` the soak on a board whose bundle is deployed (``runner``, the suite's InferenceRunner)."""

    runner: InferenceRunner = attr.ib()
    command = attr.ib()  # CommandProtocol of the board, for the window readings
    duration_s: float = attr.ib(converter=float)
    window_s: float | None = attr.ib(default=None)
    on_window: Callable[[SoakWindow], None] | None = attr.ib(default=None)
    on_turn: Callable[[SoakTurn], None] | None = attr.ib(default=None)
    clusters: dict[str, list[int]] = attr.ib(factory=dict)  # cluster -> its CPUs, for cpu_busy_pct

    def __attrs_post_init__(self) -> None:
        if self.window_s is None:
            self.window_s = max(MIN_WINDOW_S, self.duration_s / WINDOWS)
        self._result = SoakResult()
        self._start = 0.0
        self._window_turns: list[SoakTurn] = []
        self._window_start = 0.0
        self._asked: list = []
        self._last_board = BoardState()  # the reading the next window's CPU use is counted from

    # --- what is asked -------------------------------------------------------------------
    def _questions(self) -> list[tuple[prompt_set.Prompt, str, str | None, tuple]]:
        """(prompt, text sent, golden answer, keywords) of the soak's alternating turns."""
        golden: GoldenAnswers = self.runner.golden
        text = prompt_set.text_prompts()[0]
        out = [(text, text.text, golden.text(text.id), golden.keywords(text))]
        if not has_llm(self.runner.demo.demo_version) and self.runner.pictures:
            picture = self.runner.pictures[0]
            image = prompt_set.image_prompts()[0]
            out.append((image, image.text, golden.image(picture["file"], image.id), golden.keywords(image, picture)))
        return out

    def _prompts(self):
        questions = self._questions()
        n = 0
        while self._result.wrong is None and self._elapsed() < self.duration_s:
            self._asked.append(questions[n % len(questions)])
            yield self._asked[-1][1]
            n += 1
        self._close_window()  # the last one, read while the demo still runs

    def _elapsed(self) -> float:
        return time.monotonic() - self._start

    # --- each turn, each window ------------------------------------------------------------
    def _turn_done(self, n: int, turn) -> None:
        prompt, _, golden, keywords = self._asked[n - 1]
        exchanges = demo_log.split_turns("user: " + turn.text)
        answer = exchanges[0].answer if exchanges else ""
        runs = rkllm_log.parse(turn.text)["runs"]
        perf = runs[0] if runs else {}
        problem = None
        missing = prompt_set.missing_keywords(answer, keywords)
        if not answer:
            problem = "no answer"
        elif missing:
            problem = f"the answer lacks {missing}"
        elif GoldenAnswers.differs(answer, golden):
            problem = "the answer differs from the golden answer"
        done = SoakTurn(n=n, t=round(self._elapsed(), 3), prompt_id=prompt.id, answer=answer, problem=problem,
                        decode_tps=perf.get("generate_tokens_per_s"), prefill_tps=perf.get("prefill_tokens_per_s"),
                        peak_memory_mib=perf.get("peak_memory_mib"))
        self._result.turns.append(done)
        self._window_turns.append(done)
        if problem and self._result.wrong is None:
            self._result.wrong = done
        if self.on_turn is not None:
            self.on_turn(done)
        if self._elapsed() - self._window_start >= self.window_s:
            self._close_window()

    def _close_window(self) -> None:
        if not self._window_turns:
            return
        turns, self._window_turns = self._window_turns, []
        board = self._read_board()
        before, self._last_board = self._last_board, board
        cpu = (cpustat.cluster_utilisation(before.cpu_times, board.cpu_times, self.clusters)
               if before.cpu_times and board.cpu_times else {})
        peaks = [t.peak_memory_mib for t in turns if t.peak_memory_mib is not None]
        window = SoakWindow(index=len(self._result.windows), t0=round(self._window_start, 3), t1=turns[-1].t,
                            turns=len(turns), decode_tps=_median(t.decode_tps for t in turns),
                            prefill_tps=_median(t.prefill_tps for t in turns),
                            peak_memory_mib=max(peaks) if peaks else None, board=board, cpu_busy_pct=cpu)
        self._window_start = self._elapsed()
        self._result.windows.append(window)
        if self.on_window is not None:
            self.on_window(window)

    def _read_board(self) -> BoardState:
        programs = ("llm", "demo") if has_llm(self.runner.demo.demo_version) else ("demo",)
        try:
            return parse_snapshot("\n".join(self.command.run_check(snapshot_command(programs), timeout=30)))
        except Exception as e:  # noqa: BLE001 - a window without its reading still counts its turns
            self.runner.demo.logger.warning("soak window %d: no board reading: %s", len(self._result.windows), e)
            return BoardState()

    # --- the session ---------------------------------------------------------------------
    def run(self) -> SoakResult:
        runner = self.runner
        layout = runner.layout
        problems = runner.problems.get("text")
        if problems:
            self._result.error = "not run, configuration check failed: " + "; ".join(
                f"[{p.check}] {p.message}" for p in problems)
            return self._result
        self._last_board = self._read_board()
        self._start = time.monotonic()
        with runner.npu.sample(max_seconds=self.duration_s + 3600) as sampler:
            board_t0 = None
            try:
                runner.demo.run_text(layout.demo_dir, layout.llm, self._prompts(), max_new_tokens=MAX_NEW_TOKENS,
                                     max_context_len=MAX_CONTEXT_LEN,
                                     image=layout.picture(runner.pictures[0]["file"]) if runner.pictures else None,
                                     encoder=layout.vision, on_turn=self._turn_done)
            except DemoError as e:
                self._result.error = str(e)
            finally:
                self._close_window()  # the turns of a session that ended early
                samples = sampler.samples
                if samples:
                    board_t0 = samples[0].t
                self._result.npu_samples = [(s.t - board_t0, s.npu_freq) for s in samples if s.npu_freq is not None]
        self._result.seconds = self._elapsed()
        return self._result
