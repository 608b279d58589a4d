"""The suite's configuration: the options and the env, checked and read once, then frozen.

A typo in ``--image`` or a broken ``--limits`` file must stop the run at once, not after a
flash and a boot, so every option is resolved before a test runs into one ``SuiteConfig``
that everything else reads. Configuration flows one way: the env file gives labgrid its
drivers and this object its board, place and folders; nothing reads the env again.
"""

from __future__ import annotations

import os
from pathlib import Path

import attr

from hil.kit import bundle, images, pictures, vision
from hil.kit.golden import GOLDEN_DIR, GoldenAnswers, GoldenError
from hil.measure import history as historymod
from hil.measure.limits import Limit, Limits, LimitsError
from hil.paths import twin_demo_dir, twin_models_dir, twin_vision_dirs
from hil.rockchip import rkfw
from hil.rockchip.versions import RK3576
from hil.suite.endurance import EnduranceConfig, EnduranceError
from hil.suite.env import LabEnv

DEFAULT_MODEL = "qwen2-vl-2b-instruct_w4a16_rk3576"
DEFAULT_REPEAT = 5
DEFAULT_RESULTS = "results"
DEFAULT_TEST_TIMEOUT = 1800.0
HISTORY_ENV = "HIL_HISTORY"


class ConfigError(ValueError):
    """An option or env value the run cannot start with; the message names it and the fix."""


@attr.s(frozen=True)
class SuiteConfig:
    env = attr.ib()  # LabEnv
    image = attr.ib()  # hil.kit.images.ImageManifest or None
    image_file = attr.ib()  # Path to flash, or None when not flashing
    firmware = attr.ib(default=None, kw_only=True)  # hil.rockchip.rkfw.FirmwareImage of a vendor update.img
    kit = attr.ib()  # hil.kit.bundle.DeployKit
    model = attr.ib()  # hil.kit.bundle.ModelFiles
    limits = attr.ib()  # hil.measure.limits.Limits
    limits_files = attr.ib(factory=list)
    pictures = attr.ib(factory=list)  # the picture manifest entries of images/pictures
    repeat = attr.ib(default=DEFAULT_REPEAT)  # repetitions of each performance figure, after a warm-up
    baseline = attr.ib(default=None)  # --baseline as given
    results_dir = attr.ib(default=Path(DEFAULT_RESULTS))
    history_path = attr.ib(default=None)  # Path, or None for no history
    place = attr.ib(default=None)  # the labgrid place this process drives, when known
    test_timeout = attr.ib(default=DEFAULT_TEST_TIMEOUT)  # s: each test's deadline, fixtures included
    golden_dir = attr.ib(default=GOLDEN_DIR)  # the models' golden answers (--golden-dir, target option golden_dir)
    vision = attr.ib(default=None)  # hil.kit.vision.VisionKit, or None when no vision set is configured
    endurance = attr.ib(factory=EnduranceConfig)  # the long tests' counts and durations

    def golden(self) -> GoldenAnswers:
        """The recorded answers of the model under test on the bundle's runtime."""
        return GoldenAnswers.load(self.model.name, self.runtime.rkllm_runtime, self.golden_dir)

    @property
    def board(self) -> str:
        """The kind of board, for the limits."""
        return self.env.board_type

    @property
    def board_id(self) -> str:
        """The board this process drives: its place, else the env's board."""
        return self.env.board_id(self.place)

    @property
    def twin(self) -> bool:
        return self.env.twin_bench is not None

    @property
    def runtime(self) -> bundle.RuntimeBundle:
        return self.kit.runtime

    def layout(self) -> bundle.DeployLayout:
        """Where the run's bundle goes on the board (``deploy_dir``) and what it holds."""
        return bundle.DeployLayout(remote_dir=self.env.deploy_dir, kit=self.kit, model=self.model,
                                   pictures={p["file"]: pictures.PICTURES_DIR / p["file"] for p in self.pictures})

    def model_limits(self) -> dict:
        return self.limits.select(board=self.board, model=self.model.name, runtime=self.runtime.rkllm_runtime)

    def vision_limits(self, model: vision.VisionModel) -> dict:
        """A vision model's limits: those drawn from its published figure, then the limits
        files' entries that match it (by its name and the librknnrt version)."""
        return {**vision_defaults(model),
                **self.limits.select(board=self.board, model=model.name, runtime=self.vision.rknn_runtime)}

    def vision_golden(self, model: vision.VisionModel) -> GoldenAnswers:
        return GoldenAnswers.load(model.name, self.vision.rknn_runtime, self.golden_dir)

    def at_place(self, place: str | None) -> "SuiteConfig":
        """The same configuration for a process that drives ``place`` (a farm's worker)."""
        return attr.evolve(self, place=place) if place else self


# What the suite's fixtures ask the target for; one name of each group must be in the env.
REQUIRED_DRIVERS = (
    (("RK3576Strategy",), "the boot state machine (power, console, U-Boot, shell)"),
    (("ParamikoSSHDriver",), "commands, deploys and the demos over SSH"),
    (("NPUDriver",), "the NPU tests and the frequency lock"),
    (("RKLLMDemoDriver",), "the inference tests"),
    (("RKNNBenchmarkDriver",), "the vision model tests"),
)
FLASH_DRIVERS = ("TwinFlashDriver", "RKDeveloptoolDriver", "UpgradeToolDriver")


def check_drivers(env: LabEnv, flashing: bool) -> None:
    """Every driver the suite needs is in the env, before a bench starts or a place is acquired."""
    names = set(env.driver_names)
    needed = list(REQUIRED_DRIVERS)
    if flashing:
        needed.append((FLASH_DRIVERS, "flashing --image (or pass --no-flash)"))
    missing = [f"{' or '.join(group)} ({why})" for group, why in needed if not names & set(group)]
    if missing:
        raise ConfigError(f"{env.path}: targets.main.drivers lacks {'; '.join(missing)}: add it, as in "
                          "env/rk3576.yaml")


def check_baseline(spec: str, history: Path | None, board: str, model: str, runtime: str) -> None:
    """``--baseline`` names a run that can be read, before the lab is touched."""
    try:
        historymod.load_baseline(spec, history=history if history is None or history.exists() else None,
                                 board=board, model=model, runtime=runtime)
    except historymod.HistoryError as e:
        raise ConfigError(f"--baseline {spec}: {e}") from None


def history_path(option: str | None, results_dir: Path) -> Path | None:
    value = option or os.environ.get(HISTORY_ENV)
    if value and value.lower() == "none":
        return None
    return Path(value) if value else Path(results_dir) / "history.sqlite"


def deadline_of(option: float | None, env: LabEnv) -> float:
    """``--test-timeout``, else the env's target option ``test_timeout``, else the default."""
    value, where = (option, "--test-timeout") if option is not None else (
        env.target_options.get("test_timeout", DEFAULT_TEST_TIMEOUT), f"test_timeout in {env.path}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ConfigError(f"{where} must be a number of seconds above 0, got {value!r}")
    return float(value)


def is_image_path(value: str) -> bool:
    """``--image`` names a manifest of ``images/firmware`` (``twin-good``) or a file (``update.img``)."""
    return "/" in value or value.endswith(".img")


def vendor_image(value: str, env: LabEnv, flashing: bool) -> rkfw.FirmwareImage:
    """A vendor's ``update.img``: its RKFW header read, and an image for another SoC refused,
    before the board is touched."""
    path = Path(os.path.expanduser(value))
    if not path.is_file():
        raise ConfigError(f"--image {value}: no such file (a vendor update.img, or the name of a manifest in "
                          "images/firmware)")
    try:
        firmware = rkfw.read_update_img(path)
        rkfw.check_chip(firmware, RK3576.soc)
    except rkfw.FirmwareError as e:
        raise ConfigError(f"--image: {e}") from e
    if flashing and "UpgradeToolDriver" not in env.driver_names:
        raise ConfigError(f"--image {value}: an update.img (RKFW, {firmware.chip} firmware {firmware.version}) is "
                          f"flashed with 'upgrade_tool uf' (UpgradeToolDriver in {env.path}); rkdeveloptool and the "
                          "twin's flash service write raw images. Configure upgrade_tool, or pass --no-flash to check "
                          "the board as it runs")
    return firmware


def _local(value, env: LabEnv, option: str) -> Path | None:
    """A command-line path, else the env's target option of the same name."""
    return Path(os.path.expanduser(str(value))) if value else env.local_path(option)


def load_kit(options, env: LabEnv) -> bundle.DeployKit:
    """The demo build and the models, from the files as the SDK and the model zoo lay them out:
    ``--demo-dir``, then ``--llm``/``--vision`` or ``--models-dir`` (each also a target option);
    on the twin, the twin's SDK build and model folder when nothing is given."""
    demo_dir = _local(options.demo_dir, env, "demo_dir")
    models_dir = _local(options.models_dir, env, "models_dir")
    llm, vision = _local(options.llm, env, "llm"), _local(options.vision, env, "vision")
    if vision is not None and llm is None:
        raise ConfigError("--vision needs --llm: the .rkllm whose images the encoder reads")
    if llm is not None and options.models_dir:
        raise ConfigError("pass --llm/--vision or --models-dir, not both")
    if env.twin_bench is not None:  # the twin's own SDK build and models, unless told otherwise
        demo_dir = demo_dir or twin_demo_dir()
        models_dir = models_dir or (twin_models_dir() if llm is None else None)
        for path in (demo_dir, models_dir):
            if path in (twin_demo_dir(), twin_models_dir()) and not path.exists():
                raise ConfigError(f"the twin's SDK build and models are not built ({path}): run 'hil twin build'")
    if demo_dir is None and models_dir is not None and (models_dir / "runtime" / bundle.DEMO_DIR).is_dir():
        demo_dir = models_dir / "runtime" / bundle.DEMO_DIR  # the older layout: runtime/ inside the models folder
    if demo_dir is None:
        raise ConfigError(f"no demo build: pass --demo-dir DIR (the SDK's deploy/install/{bundle.DEMO_DIR}) or set "
                          f"the target option demo_dir in {env.path}")
    if llm is not None:
        if vision is None and llm.parent.is_dir():  # the encoder beside it, when the names pair them
            vision = bundle.pair([llm], sorted(llm.parent.glob("*.rknn")), lone=False).get(llm)
        model = bundle.read_model(llm, vision)
        return bundle.DeployKit(runtime=bundle.load_runtime(demo_dir), models={model.name: model}, source=str(llm))
    if models_dir is None:
        raise ConfigError("no model: pass --llm FILE.rkllm [--vision FILE.rknn] or --models-dir DIR, or set the "
                          f"target option llm or models_dir in {env.path}")
    return bundle.load(demo_dir, models_dir)


def load_vision(options, env: LabEnv) -> vision.VisionKit | None:
    """The vision set (``--vision-models``, ``--rknn-benchmark``, ``--zoo-demos``, each also a
    target option; the twin's own on the twin), or None when none is configured."""
    models = _local(getattr(options, "vision_models", None), env, "vision_models")
    bench = _local(getattr(options, "rknn_benchmark", None), env, "rknn_benchmark")
    zoo = _local(getattr(options, "zoo_demos", None), env, "zoo_demos")
    if env.twin_bench is not None:
        twin_models, twin_bench, twin_zoo = twin_vision_dirs()
        if models is None and not twin_models.exists():
            raise ConfigError(f"the twin's vision models are not built ({twin_models}): run 'hil twin build'")
        models, bench, zoo = models or twin_models, bench or twin_bench, zoo or twin_zoo
    if models is None:
        if bench is not None or zoo is not None:
            raise ConfigError("--rknn-benchmark/--zoo-demos need --vision-models DIR (the .rknn models to qualify)")
        return None
    if bench is None:
        raise ConfigError(f"--vision-models {models} needs rknn_benchmark: pass --rknn-benchmark DIR (rknpu2's "
                          f"install/rknn_benchmark_Linux) or set the target option rknn_benchmark in {env.path}")
    try:
        return vision.load_kit(bench, models, zoo)
    except bundle.KitError as e:
        raise ConfigError(str(e)) from e


def vision_defaults(model: vision.VisionModel) -> dict:
    """Limits drawn from a model's published FPS (``Limit.source`` names the figure): FPS at least
    90 % of it on one core and on both, latency at most the time of a frame at that rate; and
    the weights no larger than 125 % of the file that holds them."""
    out = {}
    if model.published_fps:
        fps = round(0.9 * model.published_fps, 2)
        source = f"90 % of {model.published_source}"
        out["rknn_fps"] = Limit(name="rknn_fps", unit="FPS", min=fps, published=model.published_fps, source=source)
        out["rknn_latency_ms"] = Limit(name="rknn_latency_ms", unit="ms", max=round(1000.0 / fps, 3),
                                       published=round(1000.0 / model.published_fps, 3), source=source)
    size_mib = model.path.stat().st_size / 2**20
    out["rknn_weight_mib"] = Limit(name="rknn_weight_mib", unit="MiB", max=round(1.25 * size_mib, 3),
                                   source=f"125 % of {model.path.name} ({size_mib:.3f} MiB): the weights are in the file")
    return out


def resolve(options, env: LabEnv, place: str | None = None) -> SuiteConfig:
    """Check every option against the files it names; raises ConfigError with the cause.

    ``options`` has the suite's command-line options as attributes (pytest's ``config.option``).
    """
    if options.repeat < 1:
        raise ConfigError("--repeat must be at least 1")
    try:
        endurance = EnduranceConfig.from_options(options, env.target_options)
    except EnduranceError as e:
        raise ConfigError(str(e)) from None
    image = image_file = firmware = None
    if options.image and is_image_path(options.image):
        firmware = vendor_image(options.image, env, flashing=not options.no_flash)
        image_file = None if options.no_flash else Path(firmware.path)
    elif options.image:
        try:
            image = images.load(options.image)
            if not options.no_flash:
                image_file = images.image_file(image)
        except images.ManifestError as e:
            raise ConfigError(f"--image: {e}") from e

    check_drivers(env, flashing=image_file is not None)
    vision_kit = load_vision(options, env)
    try:
        kit = load_kit(options, env)
        model = kit.model(options.model, default=DEFAULT_MODEL)
    except bundle.KitError as e:
        raise ConfigError(str(e)) from e
    try:
        limits = Limits.load(*options.limits)
        # entries that contradict each other only once merged for this board, model and runtime
        limits.select(board=env.board_type, model=model.name, runtime=kit.runtime.rkllm_runtime)
        for vision_model in vision_kit.models if vision_kit is not None else ():
            limits.select(board=env.board_type, model=vision_model.name, runtime=vision_kit.rknn_runtime)
    except LimitsError as e:
        raise ConfigError(f"--limits: {e}") from e
    golden_dir = _local(getattr(options, "golden_dir", None), env, "golden_dir") or GOLDEN_DIR
    try:  # a broken golden file stops the run now, not at the first golden check
        GoldenAnswers.load(model.name, kit.runtime.rkllm_runtime, golden_dir)
    except GoldenError as e:
        raise ConfigError(f"--golden-dir: {e}") from None
    results_dir = Path(options.results)
    if options.baseline and not env.is_farm:  # a farm's boards are known only once their places are
        check_baseline(options.baseline, history_path(options.history, results_dir), env.board_id(place),
                       model.name, kit.runtime.rkllm_runtime)
    return SuiteConfig(env=env, image=image, image_file=image_file, firmware=firmware, kit=kit, model=model, limits=limits,
                       limits_files=list(options.limits), pictures=pictures.load(), repeat=options.repeat,
                       baseline=options.baseline, results_dir=results_dir,
                       history_path=history_path(options.history, results_dir), place=place,
                       test_timeout=deadline_of(getattr(options, "test_timeout", None), env), golden_dir=golden_dir,
                       vision=vision_kit, endurance=endurance)
