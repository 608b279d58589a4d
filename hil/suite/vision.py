"""RKNN vision models on the board: what stops a model before it runs, its runs of
``rknn_benchmark`` per core mask, and its answers about the test pictures.

Every run is made once per session and kept (``VisionRunner`` caches by model and core
mask), so the speed, memory, scaling and answer tests of one model read the same runs. A
model the configuration refuses (built for another SoC, or a librknnrt newer than the board's
driver supports) is never run: each of its tests fails with the refusal, naming both sides.
"""

from __future__ import annotations

import json
import posixpath
import statistics

import attr

from hil.kit.vision import BENCHMARK, VisionKit, VisionModel
from hil.lab.rknnbench import RKNNToolError, ToolRun
from hil.rockchip import versions, zoo_demo

CORE_MASKS = (1, 2, 3)  # NPU core 0, core 1, both (rknn_core_mask), as rknn_benchmark takes them
SINGLE, BOTH = 1, 3
TOP1_SCORE_TOLERANCE = 0.05  # absolute: INT8 scores move by a quantization step or two between runtimes
MIN_IOU = 0.9  # a recorded box and the board's must overlap this much


@attr.s(frozen=True)
class VisionLayout:
    """Where the vision kit lands on the board, under ``<deploy_dir>/rknn``::

        rknn_benchmark_Linux/   rknn_benchmark and its lib/librknnrt.so
        zoo/<demo>/             the model zoo demos the detectors need
        models/<name>.rknn
        pictures/
    """

    remote_dir: str = attr.ib()
    kit: VisionKit = attr.ib(repr=False)
    pictures: dict = attr.ib(repr=False, factory=dict)  # picture file -> local Path

    @classmethod
    def under(cls, deploy_dir: str, kit: VisionKit, pictures: dict) -> "VisionLayout":
        return cls(posixpath.join(deploy_dir, "rknn"), kit, pictures)

    def files(self) -> dict:
        return {**self.kit.files(), **{f"pictures/{name}": path for name, path in self.pictures.items()}}

    def path(self, rel: str) -> str:
        return posixpath.join(self.remote_dir, rel)

    @property
    def benchmark_dir(self) -> str:
        return self.path(BENCHMARK)

    def model(self, model: VisionModel) -> str:
        return self.path(model.rel)

    def demo_dir(self, demo: str) -> str:
        return self.path(f"zoo/{demo}")

    def picture(self, name: str) -> str:
        return self.path(f"pictures/{name}")


def driver_problem(rknn_runtime: str, driver_version: str | None) -> str | None:
    """Why librknnrt ``rknn_runtime`` cannot run on RKNPU driver ``driver_version``, or None."""
    if not driver_version:
        return f"no RKNPU driver version found on the board: librknnrt {rknn_runtime} needs the rknpu driver"
    need = versions.required_rknn_driver(rknn_runtime)
    if need is not None and not versions.at_least(driver_version, need):
        return (f"librknnrt {rknn_runtime} is newer than the board's RKNPU driver {driver_version} supports: it "
                f"needs {need} or later ({versions.RKNN_DRIVER_SOURCE}); update the kernel's rknpu driver, or "
                f"qualify with the librknnrt the board's BSP ships")
    return None


def platform_problem(model: VisionModel, soc: str) -> str | None:
    """Why ``model`` cannot run on a ``soc`` board, from what its ``.rknn`` says, or None."""
    if model.platforms and soc.upper() not in model.platforms:
        return (f"{model.path.name} was built for {', '.join(model.platforms)} (its target_platform), and this "
                f"board is {soc.upper()}: convert the model with rknn-toolkit2 for {soc.lower()}")
    return None


def fps_of(run: ToolRun) -> list[float]:
    """Frames per second of each timed loop (1000 / elapse)."""
    return [1000.0 / ms for ms in run.parsed["loops_ms"] if ms and ms > 0]


@attr.s(frozen=True)
class Answer:
    """What a model answered about one picture: a classifier's Top-5 or a detector's boxes."""

    picture: str = attr.ib()
    top5: list | None = attr.ib(default=None)  # [{"score", "class"}] of output 0
    detections: list | None = attr.ib(default=None)  # [{"label", "box", "score"}]

    def recorded(self) -> dict | list:
        """The form golden files keep."""
        if self.top5 is not None:
            return {"top5": [e["class"] for e in self.top5],
                    "top1_score": self.top5[0]["score"] if self.top5 else None}
        return [{"label": d["label"], "box": list(d["box"]), "score": d["score"]} for d in self.detections or []]

    def property(self) -> tuple[str, str]:
        kind = "classes" if self.top5 is not None else "detections"
        return f"{kind}.{self.picture}", json.dumps(self.recorded(), ensure_ascii=False)


def golden_problems(answer: Answer, expected) -> list[str]:
    """How ``answer`` differs from the recorded one (empty when it does not)."""
    got = answer.recorded()
    if answer.top5 is not None:
        problems = []
        if got["top5"][:1] != expected.get("top5", [])[:1]:
            problems.append(f"{answer.picture}: top-1 class {got['top5'][0] if got['top5'] else None}, expected "
                            f"{expected['top5'][0]} (top-5 {got['top5']}, recorded {expected['top5']})")
        elif got["top5"] != expected.get("top5"):
            problems.append(f"{answer.picture}: top-5 classes {got['top5']}, recorded {expected['top5']}")
        score, want = got["top1_score"], expected.get("top1_score")
        if want is not None and score is not None and abs(score - want) > TOP1_SCORE_TOLERANCE:
            problems.append(f"{answer.picture}: top-1 score {score:.6f}, recorded {want:.6f} "
                            f"(tolerance {TOP1_SCORE_TOLERANCE})")
        return problems
    return [f"{answer.picture}: {p}" for p in zoo_demo.match(expected, got, MIN_IOU)]


@attr.s
class VisionRunner:
    """One session's vision runs on one board; ``driver`` is its RKNNBenchmarkDriver."""

    driver = attr.ib()
    layout: VisionLayout = attr.ib()
    soc: str = attr.ib()
    driver_version: str | None = attr.ib()
    loops: int = attr.ib(default=20)
    _runs: dict = attr.ib(factory=dict, init=False)
    _answers: dict = attr.ib(factory=dict, init=False)

    def refusal(self, model: VisionModel) -> str | None:
        """Why ``model`` must not run on this board, or None."""
        problems = [p for p in (platform_problem(model, self.soc),
                                driver_problem(self.layout.kit.rknn_runtime, self.driver_version)) if p]
        return "; ".join(problems) or None

    def benchmark(self, model: VisionModel, core_mask: int) -> ToolRun:
        """``rknn_benchmark`` on zero-filled input with ``core_mask``: once per session. A run that
        failed is kept too, so every test that asks gets the same failure."""
        key = (model.name, core_mask)
        if key not in self._runs:
            try:
                self._runs[key] = self.driver.benchmark(self.layout.benchmark_dir, self.layout.model(model),
                                                        loops=self.loops, core_mask=core_mask)
            except RKNNToolError as e:
                self._runs[key] = e
        found = self._runs[key]
        if isinstance(found, RKNNToolError):
            raise found
        return found

    def answers(self, model: VisionModel, pictures: list[str]) -> list[Answer]:
        """What ``model`` says about each picture: a classifier's Top-5 from ``rknn_benchmark`` with
        the picture as input (one loop, core 0), a detector's boxes from its model zoo demo."""
        if model.name not in self._answers:
            out = []
            for picture in pictures:
                remote = self.layout.picture(picture)
                if model.kind == "classification":
                    run = self.driver.benchmark(self.layout.benchmark_dir, self.layout.model(model), remote,
                                                loops=1, core_mask=SINGLE)
                    top5 = run.parsed["top5"][0] if run.parsed["top5"] else []
                    out.append(Answer(picture, top5=top5))
                else:
                    run = self.driver.detect(self.layout.demo_dir(model.demo), self.layout.model(model), remote)
                    out.append(Answer(picture, detections=run.parsed["detections"]))
            self._answers[model.name] = out
        return self._answers[model.name]


def median(values) -> float | None:
    return statistics.median(values) if values else None
