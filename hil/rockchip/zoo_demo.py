"""The C demos of Rockchip's ``rknn_model_zoo`` (``rknn_yolov5_demo``, ``rknn_mobilenet_demo``, ...):
the arguments they take, what they print, and how close their boxes are to the expected ones.

Sources, and what each one says
-------------------------------
- The demos' source, ``airockchip/rknn_model_zoo@9bed8a5``: ``examples/{yolov5,yolov8,yolox,
  mobilenet}/cpp/main.cc``, ``examples/yolo11/cpp/main.cc@c918ec6``, ``examples/{resnet,
  RetinaFace}/cpp/main.cc@eaa94d6``, their ``rknpu2/*.cc``, ``examples/yolov5/cpp/postprocess.cc``
  and ``utils/{image_utils,file_utils}.c``. **[src]**

  - ``main()`` takes exactly two arguments; otherwise it prints ``%s <model_path> <image_path>``
    (``argv[0]`` first) and stops.
  - The detection demos (yolov5, yolov8, yolo11, yolox) print, in order: ``load lable %s`` (the
    label file, ``./model/coco_80_labels_list.txt``; newer copies of ``postprocess.cc`` spell it
    ``load label``), ``model input num: %d, output num: %d``, ``input tensors:`` and ``output
    tensors:`` each followed by one ``dump_tensor_attr()`` line per tensor (``  index=%d,
    name=%s, n_dims=%d, dims=[%d, %d, %d, %d], n_elems=%d, size=%d, fmt=%s, type=%s,
    qnt_type=%s, zp=%d, scale=%f``: always four dims, whatever ``n_dims`` is), ``model is
    NHWC input fmt`` (or NCHW), ``model input height=%d, width=%d, channel=%d``, the image
    library's lines (``origin size=%dx%d crop size=%dx%d``, ``input image: ...``, ...),
    ``rknn_run``, then one ``%s @ (%d %d %d %d) %.3f`` line per detection (label, left, top,
    right, bottom, score), then ``write_image path: %s width=%d height=%d channel=%d data=%p``
    (``out.png``; ``result.png`` for yolox). The image is written whether or not anything was
    detected, so that last line ends every run that got through inference.
  - A label the label file does not hold prints as ``null``. A label is the file's whole line,
    so it may contain spaces (``traffic light``).
  - RetinaFace prints ``face @(%d %d %d %d) score=%f`` per face (no space after ``@``) and then
    ``write_image path: result.jpg ...``.
  - The classifiers (mobilenet, resnet) first read ``./model/synset.txt`` (``num_lines=%d``),
    then print the same model lines, ``rknn_run``, and exactly five (``topk = 5``) lines
    ``[%d] score=%.6f class=%s`` (class index, softmax score, the synset line). They write no
    image; the fifth class line ends the run.
  - Failure lines, after each of which the demo stops: ``init_<name>_model fail! ret=%d
    model_path=%s``; ``read image fail! ret=%d image_path=%s``; ``init_<name>_model fail!
    ret=%d`` (sic: the inference failure reuses the init wording, and resnet's main says
    ``init_mobilenet_model``); ``read classes label file fail! path=%s``; from the model code
    ``load_model fail!``, ``rknn_init fail! ret=%d``, ``rknn_query fail! ret=%d``, ``malloc
    buffer size:%d fail!``, ``convert_image_with_letterbox fail! ret=%d`` / ``convert_image
    fail! ret=%d``, ``rknn_input_set fail! ret=%d``, ``rknn_run fail! ret=%d``,
    ``rknn_outputs_get fail! ret=%d``; from the utilities ``fopen %s fail!``, ``fread %s fail!``
    and ``error: read image %s fail``; and ``release_<name>_model fail! ret=%d`` at the end.
    ``Open %s fail!`` is the label file missing: the demo goes on and every label is ``null``.
  - Lines that look alarming but are not failures: the RGA library's own complaints (``RGA
    error message: ...``, ``RgaCollorFill(...) RGA_COLORFILL fail``) after which the demo
    converts the image on the CPU (``try convert image use cpu``) and goes on.
  - The demos print no runtime or driver version.
- The older demo, ``rockchip-linux/rknpu2@2fafa62:examples/rknn_yolov5_demo/src/main.cc`` (also
  ``airockchip/rknn-toolkit2/rknpu2/examples``, and copied by board vendors). **[src]** It prints
  ``post process config: ...``, ``Read %s ...``, ``img width = %d, img height = %d``,
  ``Loading mode...``, ``sdk version: %s driver version: %s``, ``model input num: ...``, the
  tensor lines **without** ``input tensors:`` / ``output tensors:`` headers, ``once run use %f
  ms``, ``loadLabelName %s`` (from the first post-processing), one ``%s @ (%d %d %d %d) %f``
  line per detection (six decimals), and ``loop count = %d , average run  %f ms`` last. Its
  failures: ``Usage: %s <rknn model> <jpg>``, ``cv::imread %s fail!``, ``Open file %s
  failed.``, ``rknn_init error ret=%d``.
- Real output, as published:

  - ``khadas/edge2-npu@64b3dd3:C++/README-zh.md``: the older demo's whole run (RK3588, rknnrt
    1.3.0, driver 0.7.2), ``%f`` scores and no tensor headers.
  - ``radxa-docs/docs:docs/common/ai/rockchip/_yolov8.mdx@1af5dcd``, ``_mobilenet.mdx@49a3efc``
    and ``_retinaface.mdx@050a62b``: whole runs of the current demos, ``load label`` spelt so,
    RGA complaints in the RetinaFace run.
  - ``airockchip/rknn_model_zoo`` ``examples/*/README.md`` "Expected Results": the result
    lines only (the mobilenet one under a ``-----TOP 5-----`` header the C demo does not print).
  - rockchip-linux/rknn-toolkit2#316 and airockchip/rknn-toolkit2#417 (yolov8 demo on RK3588),
    rockchip-linux/rknn-toolkit#440 (the older demo: an ``E RKNN`` line, then ``rknn_init error
    ret=-5``) and #54 (its RKNPU1 sibling ending in ``Segmentation fault``),
    ``how2flow/how2flow.github.io`` (``error while loading shared libraries: librknnrt.so``), and
    ``swdee/go-rknnlite``'s Go port, whose detection lines are the older demo's and the rest its own.

What the parser adds **[inferred]**
-----------------------------------
What it reads as rknn_benchmark's parser (``hil.rockchip.rknn_benchmark``) does lives in
``hil.rockchip.rknn_capture``: librknnrt's lines, the version, ``model input num`` and tensor
lines, the shell's failure words, and the reading of a capture run by run.

- librknnrt's own ``I/W/E RKNN:`` lines may come between the demo's lines (stderr and stdout
  merged); they are recognised wherever their marker starts on a line, and ``E RKNN`` lines
  become ``errors``. An ``E RKNN`` line alone does not make a run fail: librknnrt complains
  and goes on at times (rockchip.md §2, the RK3576 core mask); the demo's own failure line, or
  its missing result, says whether it stopped.
- ``runtime_version`` and ``driver_version`` come from ``sdk version: X driver version: Y`` (the
  older demo) or ``rknn_api/rknnrt version: X, driver version: Y`` (rknn_benchmark's form), else
  from librknnrt's ``RKNN Runtime Information[,:] librknnrt version:`` / ``RKNN Driver
  Information[,:] version:`` lines; only the version number is kept. Current demos print
  none of these unless ``RKNN_LOG_LEVEL`` is set, so both are often None.
- Tensor lines keep the first ``n_dims`` dims (``[1, 1000, 0, 0]`` with ``n_dims=2`` is
  ``[1, 1000]``). Without section headers, the first ``input num`` tensor lines are inputs and
  the rest outputs; with neither headers nor counts, the list restarting at a lower index
  starts the outputs.
- Labels are kept without surrounding spaces (a label file with a trailing space prints
  ``bus  @``); a class label loses surrounding double quotes (the Python demos quote it).
- The shell's ``Segmentation fault`` / ``Killed`` / ``Aborted`` / ``Bus error``, a missing
  library and a missing program count as the demo's failures too.
- ``complete`` is true when the run got to its end (``write_image path: ...``, the older demo's
  ``loop count = ...``, or the fifth class line) and printed no failure line. ``cut_short`` is
  None when the run is complete or a failure line says why it stopped; otherwise it says where
  the capture ends. A cut-short capture keeps everything it has.
- A capture holding several runs is split where a run must start (an echoed ``rknn_*_demo``
  command after output, or a line a run prints once when this run is past it); ``runs``
  returns them all, ``parse`` the first.

Boxes are compared as continuous coordinates: area ``(right - left) * (bottom - top)``, so a box
with ``right <= left`` or ``bottom <= top`` has no area and overlaps nothing (IoU 0). The demos'
own NMS counts pixels inclusively (``+ 1`` on each side); for boxes of tens of pixels or more the
two differ by a few percent at most.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import attr

from hil.rockchip.rkllm_log import split_marker
from hil.rockchip.rknn_capture import (IO_NUM, TENSOR, VERSION, RunReader, command, print_first_run,
                                       shell_failures, tensor)
from hil.rockchip.text import clean_lines

KEYS = (
    "runtime_version", "driver_version", "inputs", "outputs", "detections", "classes",
    "complete", "cut_short", "errors",
)
TOP_K = 5  # the classifiers' fixed topk (mobilenet/resnet main.cc)
_PROGRAM = r"rknn_\w+_demo"  # the demos' names

# --- the demos' lines (VERSION, IO_NUM and TENSOR are rknn_capture's) ----------------------------------
_SECTION = re.compile(r"^\s*(input|output) tensors:$")
_MODEL_INFO = re.compile(r"^\s*model is (?:NCHW|NHWC) input fmt$|model input height=\d+, width=\d+, channel=\d+")
_LABELS = re.compile(r"^\s*(?:load lab(?:le|el) |loadLabelName )\S")
_START = re.compile(
    r"^\s*(?:num_lines=\d+$|post process config: |Read \S.* \.\.\.$|img width = \d+, img height = \d+$"
    r"|Loading mode\.\.\.$)")
_IMAGE = re.compile(
    r"^\s*(?:origin size=\d+x\d+ crop size=|input image: \d+ x \d+|scale=[\d.]+ dst_box=|rga_api version "
    r"|try convert image use cpu$|src width is not .*convert image use cpu$)")
_RUN = re.compile(r"^\s*rknn_run$|^\s*once run use [\d.]+ ms$")
_NUMBER = r"-?(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?|nan|inf)"
_DETECTION = re.compile(rf"^\s*(\S.*?)\s+@ \((-?\d+) (-?\d+) (-?\d+) (-?\d+)\) ({_NUMBER})$")
_FACE = re.compile(rf"^\s*face @\((-?\d+) (-?\d+) (-?\d+) (-?\d+)\) score=({_NUMBER})$")
_CLASS = re.compile(rf"^\s*\[(\d+)\] score=({_NUMBER}) class=(.*)$")
_TOP_HEADER = re.compile(r"^\s*-----TOP 5-----$")
_END = re.compile(r"write_image path: \S|loop count = \d+ ,? ?average run\s+[\d.]+ ms")
_FAILURES = re.compile(
    r"\S+ <model_path> <image_path>$"
    r"|Usage: \S+ <rknn model> <jpg>"
    r"|\b(?:init|release)_\w+_model fail! ret=-?\d+.*"
    r"|read image fail! ret=-?\d+.*"
    r"|read classes label file fail! path=.*"
    r"|load_model fail!"
    r"|rknn_init fail! ret=-?\d+"
    r"|rknn_init error ret=-?\d+"
    r"|rknn_query fail! ret=-?\d+"
    r"|malloc buffer size:-?\d+ fail!"
    r"|convert_image(?:_with_letterbox)? fail! ret=-?\d+"
    r"|rknn_input_set fail! ret=-?\d+"
    r"|rknn_run fail! ret=-?\d+"
    r"|rknn_outputs_get fail! ret=-?\d+"
    r"|(?:fopen|fread|Open) \S.* fail!$"
    r"|Open file \S.* failed\.$"
    r"|error: read image \S.* fail$"
    r"|cv::imread \S.* fail!$|"
    + shell_failures(_PROGRAM)
)
_COMMAND = command(_PROGRAM)


def argv(model: str, image: str) -> list[str]:
    """The arguments that follow the demo's name: ``[model, image]`` (``main()`` takes exactly
    these two). Raises ValueError for a path that is empty or no string."""
    for what, value in (("model", model), ("image", image)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"the model zoo demos need a {what} path; got {value!r}")
    return [model, image]


# --- detections and boxes --------------------------------------------------------------------------------
def _box(value) -> tuple:
    try:
        box = tuple(value)
    except TypeError:
        raise ValueError(f"a box is [left, top, right, bottom]; got {value!r}") from None
    if len(box) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        raise ValueError(f"a box is four numbers [left, top, right, bottom]; got {value!r}")
    return box


def _num(v) -> str:
    return str(v) if isinstance(v, int) else f"{v:g}"


@attr.s(frozen=True)
class Detection:
    """One detection: ``label``, ``box`` (left, top, right, bottom) and ``score`` (None when
    unknown, as in an expected answer)."""

    label: str = attr.ib(converter=lambda v: str(v).strip())
    box: tuple = attr.ib(converter=_box)
    score: float | None = attr.ib(default=None)

    @classmethod
    def of(cls, value) -> "Detection":
        """A Detection from a Detection or a dict with ``label`` and ``box`` (``score``
        optional), the form ``parse`` gives and golden files keep."""
        if isinstance(value, Detection):
            return value
        if isinstance(value, dict) and "label" in value and "box" in value:
            return cls(value["label"], value["box"], value.get("score"))
        raise ValueError(f"a detection is a dict with 'label' and 'box' (and maybe 'score'); got {value!r}")

    def as_dict(self) -> dict:
        return {"label": self.label, "box": list(self.box), "score": self.score}

    def __str__(self) -> str:
        return f"{self.label} @ ({' '.join(_num(v) for v in self.box)})"


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[left, top, right, bottom]`` boxes, taken as continuous
    coordinates: identical boxes give 1.0, disjoint or touching ones 0.0, and a box without
    area (``right <= left`` or ``bottom <= top``) 0.0 against anything."""
    l1, t1, r1, b1 = _box(a)
    l2, t2, r2, b2 = _box(b)
    inter = max(0.0, min(r1, r2) - max(l1, l2)) * max(0.0, min(b1, b2) - max(t1, t2))
    area1 = max(0.0, r1 - l1) * max(0.0, b1 - t1)
    area2 = max(0.0, r2 - l2) * max(0.0, b2 - t2)
    union = area1 + area2 - inter
    return inter / union if union > 0 and area1 > 0 and area2 > 0 else 0.0


def _compare(value: float, limit: float) -> tuple[str, str]:
    """``value`` and ``limit`` with as many decimals as it takes to tell them apart (2 to 6)."""
    for digits in range(2, 7):
        a, b = f"{value:.{digits}f}", f"{limit:.{digits}f}"
        if a != b:
            return a, b
    return repr(value), repr(limit)


def match(expected: Iterable, actual: Iterable, min_iou: float, extra_score: float | None = None) -> list[str]:
    """What is wrong with ``actual`` detections against ``expected`` ones, as readable lines
    (none when they agree). Both are Detections or dicts (``label``, ``box``, ``score``).

    Each expected detection must be matched by an actual one with the same label and an IoU of
    at least ``min_iou`` (0 < min_iou <= 1). Pairs are taken greedily, best IoU first, and each
    actual detection matches one expected detection at most. An unmatched expected detection is
    reported with the best same-label candidate left (``expected bus @ (91 129 555 464): best
    bus @ (95 130 550 460) IoU 0.93 < 0.95``), or as not detected with the labels that were.
    With ``extra_score``, an actual detection that matched nothing and scored at least that
    much is reported too; by default extra detections are not checked.
    """
    if isinstance(min_iou, bool) or not isinstance(min_iou, (int, float)) or not 0 < min_iou <= 1:
        raise ValueError(f"min_iou must be a number in (0, 1]; got {min_iou!r}")
    exp = [Detection.of(e) for e in expected]
    act = [Detection.of(a) for a in actual]
    pairs = sorted(((iou(e.box, a.box), i, j) for i, e in enumerate(exp) for j, a in enumerate(act)
                    if e.label == a.label), key=lambda p: (-p[0], p[1], p[2]))
    matched: dict[int, int] = {}  # expected index -> actual index
    taken: dict[int, int] = {}  # actual index -> expected index
    for value, i, j in pairs:
        if value < min_iou:
            break
        if i not in matched and j not in taken:
            matched[i], taken[j] = j, i
    problems = []
    for i, e in enumerate(exp):
        if i in matched:
            continue
        same = [(iou(e.box, a.box), j) for j, a in enumerate(act) if a.label == e.label]
        free = [(v, j) for v, j in same if j not in taken]
        if free:
            value, j = max(free, key=lambda p: (p[0], -p[1]))
            got, limit = _compare(value, min_iou)
            problems.append(f"expected {e}: best {act[j]} IoU {got} < {limit}")
        elif same:
            value, j = max(same, key=lambda p: (p[0], -p[1]))
            problems.append(f"expected {e}: each {e.label} detected matches another expected {e.label} "
                            f"(best {act[j]}, IoU {value:.2f}, matches expected {exp[taken[j]]})")
        else:
            seen = sorted({a.label for a in act})
            problems.append(f"expected {e}: not detected "
                            f"({'labels seen: ' + ', '.join(seen) if seen else 'nothing detected'})")
    if extra_score is not None:
        for j, a in enumerate(act):
            if j not in taken and a.score is not None and a.score >= extra_score:
                problems.append(f"unexpected {a} {a.score:.3f}: no expected {a.label} there "
                                f"(score >= {extra_score:g})")
    return problems


# --- parsing ------------------------------------------------------------------------------------------------
class _Run(RunReader):
    """One run of a demo being read, line by line."""

    KEYS = KEYS
    STAGES = ("start", "model", "image", "run", "results", "end")
    FAILURES = _FAILURES

    def __init__(self) -> None:
        super().__init__()
        self.out.update(inputs=[], outputs=[], detections=[], classes=[])
        self.n_inputs: int | None = None
        self.n_outputs: int | None = None
        self.section: str | None = None  # input/output, after a header
        self.last_index: int | None = None
        self.version_seen = False

    def _tensor(self, m: re.Match) -> None:
        index = int(m[1])
        section = self.section
        if section is None:  # the older demo prints no headers
            if self.n_inputs is not None:
                section = "input" if len(self.out["inputs"]) < self.n_inputs else "output"
            elif self.out["outputs"] or (self.last_index is not None and index <= self.last_index):
                section = "output"
            else:
                section = "input"
        self.out[f"{section}s"].append(tensor(m))
        self.last_index = index

    def _tool_line(self, line: str) -> None:
        out = self.out
        if self._failure(line):
            return
        if m := VERSION.search(line):
            self._versions(m)
            self.version_seen = True
            self._at("model")
        elif m := IO_NUM.search(line):
            self.n_inputs, self.n_outputs = int(m[1]), int(m[2])
            self._at("model")
        elif m := _SECTION.match(line):
            self.section = m[1]
            self._at("model")
        elif m := TENSOR.search(line):
            self._tensor(m)
            self._at("model")
        elif _MODEL_INFO.search(line):
            self._at("model")
        elif _LABELS.match(line) or _START.match(line):
            self._at("start")
        elif _IMAGE.match(line):
            self._at("image")
        elif _RUN.match(line):
            self._at("run")
        elif m := _FACE.match(line):
            out["detections"].append(
                {"label": "face", "box": [int(m[1]), int(m[2]), int(m[3]), int(m[4])], "score": float(m[5])})
            self._at("results")
        elif m := _DETECTION.match(line):
            out["detections"].append(
                {"label": m[1].strip(), "box": [int(m[2]), int(m[3]), int(m[4]), int(m[5])], "score": float(m[6])})
            self._at("results")
        elif m := _CLASS.match(line):
            label = m[3].strip()
            if len(label) >= 2 and label[0] == label[-1] == '"':
                label = label[1:-1]
            out["classes"].append({"class": int(m[1]), "score": float(m[2]), "label": label})
            self._at("results")
        elif _TOP_HEADER.match(line):
            self._at("results")
        elif _END.search(line):
            self._at("end")

    def _ended(self) -> bool:
        return self.stage == self.STAGES.index("end") or len(self.out["classes"]) >= TOP_K

    def _where_it_ends(self) -> str:
        out = self.out
        stage = self.reached()
        if stage is None:
            return "holds no rknn_model_zoo demo output"
        if stage == "start":
            return "ends before the model information ('model input num: ...')"
        if stage == "model":
            got = len(out["outputs"])
            if self.n_outputs is not None and got < self.n_outputs:
                return (f"ends in the model information ({got} of {self.n_outputs} output tensors), "
                        f"before inference ('rknn_run')")
            return "ends after the model information, before inference ('rknn_run')"
        if stage == "image":
            return "ends while the image is prepared, before inference ('rknn_run')"
        if stage == "run":
            return "ends after 'rknn_run', before any result line or 'write_image path: ...'"
        if out["classes"]:
            return f"ends after {len(out['classes'])} of {TOP_K} class lines"
        return (f"ends after {len(out['detections'])} detections, before the end of the run "
                f"('write_image path: ...' or 'loop count = ...')")

    def starts_next(self, line: str) -> bool:
        """Whether ``line`` can only be the start of another run: an echoed ``rknn_*_demo``
        command after output, or a line a run prints once when this run is already past it."""
        _, _, source, _ = split_marker(line)
        if source == "RKNN" or _FAILURES.search(line):
            return False
        if _COMMAND.search(line):
            return self.recognized
        if VERSION.search(line):
            return self.version_seen
        if IO_NUM.search(line):
            return self.n_outputs is not None
        if _START.match(line):
            return self.stage >= self.STAGES.index("model")
        if _LABELS.match(line):  # the older demo loads its labels after inference, before its results
            return self.stage >= self.STAGES.index("results")
        return False


def runs(text: str) -> list[dict]:
    """Every run of a demo in ``text``, in order, each a dict of ``KEYS`` (at least one)."""
    return _Run.read(clean_lines(text))[0]


def parse(text: str) -> dict:
    """The first run of a model zoo demo in ``text`` (a serial or SSH capture: CRLF, ANSI codes,
    prompts and librknnrt's log lines are fine), as a dict of ``KEYS``:

    - ``runtime_version``, ``driver_version``: str or None (current demos print neither).
    - ``inputs``, ``outputs``: lists of ``{"name", "dims", "type"}``.
    - ``detections``: ``{"label", "box": [left, top, right, bottom], "score"}``, in printed order.
    - ``classes``: a classifier's ``{"class", "score", "label"}``, best first.
    - ``complete``: bool. ``cut_short``: None, or where the capture ends.
    - ``errors``: the ``E RKNN`` lines and the demo's (or the shell's) failure lines, as printed.
    """
    return runs(text)[0]


def main(path: str) -> int:
    """``hil parse zoo-demo FILE``: the first run in FILE (``-`` = stdin) as one JSON object with
    the keys ``KEYS``. Warns on stderr when nothing in the file is a demo's (or librknnrt's)
    output, and when it holds more than one run."""
    return print_first_run(
        path, _Run,
        "does not look like rknn_model_zoo demo output: none of its lines is a demo's ('model input "
        "num: ...', tensor attributes, 'rknn_run', 'LABEL @ (l t r b) score', '[N] score=... "
        "class=...', 'write_image path: ...' or a failure line) or librknnrt's ('I/W/E RKNN: ...'); "
        "every value in the JSON is empty",
        "runs of a model zoo demo; the JSON is the first (hil.rockchip.zoo_demo.runs reads them all)")
