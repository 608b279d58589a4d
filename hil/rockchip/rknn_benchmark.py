"""``rknn_benchmark``, the RKNPU2 SDK's model benchmark: the arguments it takes and what it prints.

Sources, and what each one says
-------------------------------
- The tool's source, ``rockchip-linux/rknpu2@4e2101a:examples/rknn_benchmark/src/rknn_benchmark.cpp``
  (the only copy of the .cpp the search index holds; ``airockchip/rknn-toolkit2`` keeps the tool at
  ``rknpu2/examples/rknn_benchmark`` and its README there, ``@77b7109``, has the same usage). **[src]**

  ``main()``:

  - ``Usage:%s model_path [input_path] [loop_count] [core_mask]`` when ``argc < 2``.
  - ``argv[2]`` is split at ``#`` into one path per model input (``.npy`` files are read as arrays,
    anything else as an image). An empty ``argv[2]`` gives no paths, and then every input is
    zero-filled. So ``""`` is what to pass for "no input" when a loop count or a core mask
    follows. Rockchip's own RKNPU user guide (CN, §5.3.3 "多核性能提升技巧") does exactly that:
    ``taskset 10 ./rknn_benchmark lenet.rknn "" 10 3``.
  - ``loop_count = atoi(argv[3])`` (default 10). ``core_mask = strtoul(argv[4], NULL, 10)``
    (default **1**, i.e. NPU core 0, not auto). The mask goes to ``rknn_set_core_mask()`` and
    its return value is not checked.
  - The lines it prints, in order:

    - ``rknn_api/rknnrt version: %s, driver version: %s`` (``rknn_query(RKNN_QUERY_SDK_VERSION)``);
    - ``total weight size: %d, total internal size: %d`` and ``total dma used size: %zu``
      (``RKNN_QUERY_MEM_SIZE``: ``rknn_mem_size`` fields, in bytes);
    - ``model input num: %d, output num: %d``;
    - ``input tensors:`` and ``output tensors:``, each followed by one ``dump_tensor_attr()`` line per
      tensor: ``  index=%d, name=%s, n_dims=%d, dims=[%s], n_elems=%d, size=%d, w_stride = %d,
      size_with_stride=%d, fmt=%s, type=%s, qnt_type=%s, zp=%d, scale=%f``;
    - ``custom string: %s``;
    - ``Warmup ...``, then exactly **5** runs of ``%4d: Elapse Time = %.2fms, FPS = %.2f``;
    - ``Begin perf ...``, then ``loop_count`` runs in the same format;
    - ``\\nAvg Time %.2fms, Avg FPS = %.3f\\n\\n``. The words are ``Avg Time`` (no "elapse") and
      ``Avg FPS =``. The mean is taken over the timed loops only;
    - ``Save output to rt_output%d.npy`` for each output;
    - for each output, ``---- Top%d ----`` followed by that many ``%8.6f - %d`` lines
      (score, class). ``%d`` is ``min(5, elements)``. ``rknn_GetTopN()`` leaves class ``-1`` and
      score ``-FLT_MAX`` in the slots it cannot fill.

  - The tool's own failure lines: ``rknn_init fail! ret=%d``, ``rknn_query fail! ret=%d``,
    ``rknn_init error! ret=%d``, ``input missing!, need input number: %d, only get %d inputs``,
    ``meet unsupported layout``, ``npy shape match failed!, ...``, ``load image failed!`` (also
    ``malloc``/``resize``), ``rknn_input_set fail! ret=%d``, ``rknn run error %d`` and
    ``rknn_outputs_get fail! ret=%d``. After each one the tool stops.
- The core masks are ``rknn_core_mask`` in ``rknn_api.h``, as quoted by the maintainer in
  airockchip/rknn-llm#247: ``RKNN_NPU_CORE_AUTO = 0``, ``_0 = 1``, ``_1 = 2``, ``_2 = 4``,
  ``_0_1 = 3``, ``_0_1_2 = 7``, ``_ALL = 0xffff``. The README lists ``0: auto, 1, 2, 4, 3, 7`` and
  says "Only RK3588 support core mask". On RK3576 (2 NPU cores) librknnrt rejects larger masks
  with ``rknn_set_core_mask: unavailable core mask found for current platform! max core mask =
  3`` (rockchip.md §2, DShanPi RK3576 log), and the tool runs on all the same. So ``argv``
  accepts 0-3 only.
- Real output, as pasted:

  - airockchip/rknn-toolkit2#129 (ROCK 5B, RK3588, rknnrt 2.1.0, driver 0.9.6, mask 1): the lines
    through the warm-up, with ``w_stride = `` fields, exactly as ``main()`` prints them.
  - rockchip-linux/rknn-toolkit2#297 (RK3588, core mask on kernel 6.1.43): ``E RKNN: ... failed to
    submit!`` and then ``rknn run error -1``.
  - jas-hacks.blogspot.com 2023/06 (RK3588, SDK 1.5.0, masks 7 and 1/2/4): ``Avg Time 9.86ms, Avg
    FPS = 101.416``.
  - rockchip-linux/rknn-toolkit2#316 (RK3588, rknn_model_zoo demo): the ``E RKNN`` lines of a
    model-version mismatch, then the same ``rknn_init fail! ret=-1`` printf.
  - airockchip/rknn-toolkit2#254 and rockchip-linux/rknn-toolkit2#320: librknnrt's ``RKNN
    Runtime Information: librknnrt version:`` lines. Old runtimes write ``:`` after
    "Information" and newer ones ``,``; in #320 the first line was pasted without its ``I``.

What the parser adds **[inferred]**
-----------------------------------
What it reads as the model zoo demos' parser (``hil.rockchip.zoo_demo``) does lives in
``hil.rockchip.rknn_capture``: librknnrt's lines, the version, ``model input num`` and tensor
lines, the shell's failure words, and the reading of a capture run by run.

- librknnrt's own ``I/W/E RKNN:`` lines may come between the tool's lines (stderr and stdout
  merged, or ``RKNN_LOG_LEVEL`` set). They are recognised wherever their marker starts on a
  line; ``E RKNN`` lines become ``errors``.
- ``runtime_version`` and ``driver_version`` come from the tool's line. When it printed none
  (for example after an init failure), they come from librknnrt's ``RKNN Runtime Information``
  / ``RKNN Driver Information`` lines. Only the version number is kept
  (``rknn_capture.VERSION_NUMBER``). ``sdk version: X driver version: Y``, the form the
  other rknpu2 demos print, is accepted too.
- The sizes are printed with ``%d`` in this copy (``%u`` in some of its siblings). A negative
  value is a uint32 that went past 2 GiB, so 2**32 is added.
- A tensor line whose ``dims`` list is longer than ``n_dims`` (a sister program, rknn_common_test,
  prints all four) keeps the first ``n_dims`` entries.
- Loop lines printed before any ``Warmup ...`` or ``Begin perf ...`` header are warm-up runs if
  a ``Begin perf ...`` follows them, and timed runs otherwise.
- The shell's ``Segmentation fault`` / ``Killed`` / ``Aborted`` / ``Bus error``, and a missing
  ``librknnrt.so``, count as the tool's failures too.
- ``complete`` is true when the tool got to its end: the average line, then one full Top block
  per output (as many as ``output num``), and no failure line. ``cut_short`` is None when the
  run is complete, or when a failure line says why the tool stopped. Otherwise it says where
  the capture ends (for example, after 3 timed loops, before the average). A cut-short
  capture keeps everything it has.
- A capture holding several runs is split where a run must start: an echoed command after
  output, or a second version line, ``Warmup ...`` or average line.
  ``runs`` returns them all; ``parse`` and ``hil parse rknn-benchmark`` give the first, and the
  CLI says on stderr how many there were.

``top5`` holds one list per output, in output order, of ``{"score", "class"}``: a classifier's
best class is ``top5[0][0]["class"]``.
"""

from __future__ import annotations

import re

from hil.rockchip.rknn_capture import (IO_NUM, TENSOR, VERSION, RunReader, command, print_first_run,
                                       shell_failures, tensor)
from hil.rockchip.text import clean_lines

KEYS = (
    "runtime_version", "driver_version", "weight_size", "internal_size", "dma_size",
    "inputs", "outputs", "loops_ms", "avg_ms", "avg_fps", "top5",
    "warmup_ms", "complete", "cut_short", "errors",
)
TOOL = "rknn_benchmark"
DEFAULT_LOOPS = 10  # the tool's own default loop_count
DEFAULT_CORE_MASK = 1  # the tool's own default when no mask is passed: NPU core 0
WARMUP_RUNS = 5  # fixed in the tool
NO_INPUT = ""  # argv[2] for "zero-filled inputs" when a later argument is passed
# rknn_core_mask values that RK3576's two NPU cores take (rknn_api.h).
CORE_MASKS = {
    0: "auto (RKNN_NPU_CORE_AUTO)",
    1: "NPU core 0 (RKNN_NPU_CORE_0)",
    2: "NPU core 1 (RKNN_NPU_CORE_1)",
    3: "NPU cores 0 and 1 (RKNN_NPU_CORE_0_1)",
}
_INT_MAX = 2 ** 31 - 1  # loop_count is an int (atoi)


def argv(model: str, input: str | None = None, loops: int = DEFAULT_LOOPS,
         core_mask: int | None = None) -> list[str]:
    """The arguments that follow the program's name: ``[model, input, loops]``, plus ``core_mask``
    when one is given.

    ``input`` is one path, or several joined with ``#`` (one per model input, ``.npy`` or an
    image). ``None`` (or ``""``) gives ``""``, which the tool reads as "no input" and so
    zero-fills every input. ``loops`` is always passed, 10 being the tool's own default.
    Without ``core_mask`` the tool uses its own default, 1 (NPU core 0, not auto).

    Raises ValueError for an empty model path, a loop count below 1 (the tool would divide by
    it) or one that is not a whole number, and a core mask RK3576 does not take: only 0, 1, 2
    and 3 (see ``CORE_MASKS``).
    """
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"{TOOL} needs a model path (argv[1]); got {model!r}")
    if input is not None and not isinstance(input, str):
        raise ValueError(f"input must be a path (several joined with '#') or None; got {input!r}")
    if isinstance(loops, bool) or not isinstance(loops, int):
        raise ValueError(f"loops must be a whole number of timed runs; got {loops!r}")
    if loops < 1:
        raise ValueError(f"loops must be at least 1; got {loops} (rknn_benchmark divides its total "
                         f"time by the loop count)")
    if loops > _INT_MAX:
        raise ValueError(f"loops must be at most {_INT_MAX} (the tool reads it with atoi); got {loops}")
    args = [model, input or NO_INPUT, str(loops)]
    if core_mask is not None:
        if isinstance(core_mask, bool) or not isinstance(core_mask, int) or core_mask not in CORE_MASKS:
            takes = ", ".join(f"{m} = {what}" for m, what in CORE_MASKS.items())
            raise ValueError(
                f"core_mask {core_mask!r} is not one RK3576 takes: {takes}. Masks 4 and 7 name "
                f"RK3588's third NPU core; librknnrt refuses them on RK3576 ('max core mask = 3') "
                f"and rknn_benchmark runs on regardless")
        args.append(str(core_mask))
    return args


# --- the tool's lines (rknn_benchmark.cpp main()); VERSION, IO_NUM and TENSOR are rknn_capture's ---
_MEM = re.compile(r"total weight size: (-?\d+), total internal size: (-?\d+)")
_DMA = re.compile(r"total dma used size: (\d+)")
_SECTION = re.compile(r"^\W*(input|output) tensors:$")
_WARMUP = re.compile(r"^\W*Warmup \.\.\.$")
_PERF = re.compile(r"^\W*Begin perf \.\.\.$")
_LOOP = re.compile(r"(?:^|\s)(\d+): Elapse Time = (-?[\w.]+)ms, FPS = (-?[\w.]+)$")
_AVG = re.compile(r"Avg Time (-?[\w.]+)ms, Avg FPS = (-?[\w.]+)")
_TOP_HEADER = re.compile(r"^\W*---- Top(\d+) ----$")
_TOP_LINE = re.compile(r"^\s*(-?\d+\.\d+) - (-?\d+)$")
_FAILURES = re.compile(
    r"rknn_init fail! ret=-?\d+"
    r"|rknn_init error! ret=-?\d+"
    r"|rknn_query fail! ret=-?\d+"
    r"|input missing!, need input number: .*"
    r"|meet unsupported layout"
    r"|npy shape match failed!.*"
    r"|(?:load|malloc|resize) image failed!"
    r"|rknn_input_set fail! ret=-?\d+"
    r"|rknn run error -?\d+"
    r"|rknn_outputs_get fail! ret=-?\d+"
    r"|Usage:\S* model_path \[input_path\] \[loop_count\] \[core_mask\]|"
    + shell_failures(TOOL)
)
_COMMAND = command(TOOL)


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _size(text: str) -> int:
    value = int(text)
    return value + 2 ** 32 if value < 0 else value  # a uint32 printed with %d


class _Run(RunReader):
    """One run of the tool being read, line by line."""

    KEYS = KEYS
    STAGES = ("version", "memory", "tensors", "warmup", "perf", "average", "top")
    FAILURES = _FAILURES

    def __init__(self) -> None:
        super().__init__()
        self.out.update(inputs=[], outputs=[], loops_ms=[], top5=[], warmup_ms=[])
        self.n_outputs: int | None = None
        self.section: str | None = None  # input/output, for tensor lines
        self.timing: str | None = None  # warmup/perf, for loop lines
        self.pending: list[float] = []  # loop lines seen before any header
        self.top_left = 0  # lines still due in the current Top block
        self.top_declared: list[int] = []  # N of each '---- TopN ----' header

    def _tool_line(self, line: str) -> None:
        out = self.out
        if self.top_left:
            if m := _TOP_LINE.match(line):
                out["top5"][-1].append({"score": float(m[1]), "class": int(m[2])})
                self.top_left -= 1
                return
            if line.strip():
                self.top_left = 0  # a block cut off by something else
        if self._failure(line):
            return
        if m := VERSION.search(line):
            self._versions(m)
            self._at("version")
        elif m := _MEM.search(line):
            out["weight_size"], out["internal_size"] = _size(m[1]), _size(m[2])
            self._at("memory")
        elif m := _DMA.search(line):
            out["dma_size"] = int(m[1])
            self._at("memory")
        elif m := IO_NUM.search(line):
            self.n_outputs = int(m[2])
            self._at("tensors")
        elif m := _SECTION.match(line):
            self.section = m[1]
            self._at("tensors")
        elif (m := TENSOR.search(line)) and self.section:
            out[f"{self.section}s"].append(tensor(m))
            self._at("tensors")
        elif _WARMUP.match(line):
            self.timing = "warmup"
            self._at("warmup")
        elif _PERF.match(line):
            out["warmup_ms"].extend(self.pending)
            self.pending = []
            self.timing = "perf"
            self._at("perf")
        elif m := _LOOP.search(line):
            ms = _float(m[2])
            if self.timing == "warmup":
                out["warmup_ms"].append(ms)
                self._at("warmup")
            elif self.timing == "perf":
                out["loops_ms"].append(ms)
                self._at("perf")
            else:
                self.pending.append(ms)
                self.recognized = True
        elif m := _AVG.search(line):
            out["avg_ms"], out["avg_fps"] = _float(m[1]), _float(m[2])
            self._at("average")
        elif m := _TOP_HEADER.match(line):
            out["top5"].append([])
            self.top_left = int(m[1])
            self.top_declared.append(self.top_left)
            self._at("top")

    def starts_next(self, line: str) -> bool:
        """Whether ``line`` can only be the start of another run: an echoed ``rknn_benchmark``
        command after output, or a line the tool prints once (its version line, ``Warmup ...``,
        the average) when this run already went past it."""
        if _FAILURES.search(line):
            return False
        if _COMMAND.search(line):
            return self.recognized
        if VERSION.search(line):
            return self.stage >= 0
        if _WARMUP.match(line):  # also after headless loop lines, which then belong to the run before
            return self.stage >= self.STAGES.index("warmup") or bool(self.pending)
        if _AVG.search(line):
            return self.out["avg_ms"] is not None
        return False

    def finish(self) -> dict:
        if self.pending:  # loop lines with no header after them: timed runs, as far as one can tell
            self.out["loops_ms"].extend(self.pending)
            self._at("perf")
            self.pending = []
        return super().finish()

    def _expected(self) -> int:
        """How many Top blocks a complete run prints: one per output."""
        return self.n_outputs if self.n_outputs is not None else max(len(self.out["top5"]), 1)

    def _ended(self) -> bool:
        top5 = self.out["top5"]
        return self.out["avg_ms"] is not None and len(top5) >= self._expected() and all(
            len(block) == declared for block, declared in zip(top5, self.top_declared))

    def _where_it_ends(self) -> str:
        out = self.out
        stage = self.reached()
        if stage is None:
            if out["loops_ms"]:
                return (f"ends after {len(out['loops_ms'])} timed loops, before the average "
                        f"('Avg Time ...')")
            return "holds no rknn_benchmark output"
        if stage in ("version", "memory", "tensors"):
            return "ends in the model information, before the warm-up ('Warmup ...')"
        if stage == "warmup":
            done = len(out["warmup_ms"])
            if done >= WARMUP_RUNS:
                return f"ends after the {done} warm-up runs, before the timed loops ('Begin perf ...')"
            return f"ends during the warm-up, after {done} of {WARMUP_RUNS} runs"
        if stage == "perf":
            return f"ends after {len(out['loops_ms'])} timed loops, before the average ('Avg Time ...')"
        if stage == "average":
            return "ends after the average, before the Top5 ('---- Top5 ----')"
        blocks = out["top5"]
        short = next((i for i, (block, declared) in enumerate(zip(blocks, self.top_declared))
                      if len(block) < declared), None)
        if short is not None:
            return (f"ends inside the Top{self.top_declared[short]} of output {short} "
                    f"({len(blocks[short])} of {self.top_declared[short]} lines)")
        return f"ends after the Top5 of {len(blocks)} of {self._expected()} outputs"


def runs(text: str) -> list[dict]:
    """Every run of the tool in ``text``, in order, each a dict of ``KEYS`` (at least one)."""
    return _Run.read(clean_lines(text))[0]


def parse(text: str) -> dict:
    """The first run of ``rknn_benchmark`` in ``text`` (a serial or SSH capture: CRLF, ANSI codes,
    prompts and librknnrt's log lines are fine), as a dict of ``KEYS``:

    - ``runtime_version``, ``driver_version``: str or None.
    - ``weight_size``, ``internal_size``, ``dma_size``: bytes (int) or None.
    - ``inputs``, ``outputs``: lists of ``{"name", "dims", "type"}``.
    - ``warmup_ms``, ``loops_ms``: one float per run.
    - ``avg_ms``, ``avg_fps``: floats or None.
    - ``top5``: one list per output of ``{"score", "class"}``.
    - ``complete``: bool. ``cut_short``: None, or where the capture ends.
    - ``errors``: the ``E RKNN`` lines and the tool's (or the shell's) failure lines, as printed.
    """
    return runs(text)[0]


def main(path: str) -> int:
    """``hil parse rknn-benchmark FILE``: the first run in FILE (``-`` = stdin) as one JSON object
    with the keys ``KEYS``. Warns on stderr when nothing in the file is rknn_benchmark (or
    librknnrt) output, and when it holds more than one run."""
    return print_first_run(
        path, _Run,
        "does not look like rknn_benchmark output: none of its lines is the tool's ('rknn_api/rknnrt "
        "version: ...', tensor attributes, 'Warmup ...', 'N: Elapse Time = ...', 'Avg Time ...', "
        "'---- Top5 ----' or a failure line) or librknnrt's ('I/W/E RKNN: ...'); every value in the "
        "JSON is empty",
        "runs of rknn_benchmark; the JSON is the first (hil.rockchip.rknn_benchmark.runs reads them all)")
