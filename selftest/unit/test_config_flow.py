"""Configuration flows one way, env -> drivers and the frozen suite configuration.

What an env file sets for a driver (the demo's timeouts and core count, the NPU sampler's
interval) is what the driver uses: nothing in the suite overrides it with constants. The
suite's own settings come from one reading of the env (``LabEnv``).
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
from labgrid import Environment

from hil.kit import prompts
from hil.kit.golden import GoldenAnswers
from hil.paths import REPO
from hil.suite import config
from hil.suite.env import EnvError, LabEnv
from hil.suite.inference import InferenceRun, InferenceRunner
from hil.twin import deploykit, models

ENV = """\
targets:
  main:
    resources:
      NetworkService: {address: 127.0.0.1, port: 1, username: root}
    drivers:
      ParamikoSSHDriver:
        host_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAII1jQX3cQn2r6lr8za+hrWVzblLggIhnkR5NWZDzRI'
      NPUDriver: {sample_interval: 0.37}
      RKLLMDemoDriver: {load_timeout: 123, turn_timeout: 45, rknn_core_num: 1}
    options:
      board: myd-lr3576
      deploy_dir: /data/hil
      models_dir: models
imports:
  - hil.lab
"""


@pytest.fixture
def env_file(tmp_path):
    path = tmp_path / "board.yaml"
    path.write_text(ENV)
    return path


def test_env_values_reach_the_drivers(env_file):
    target = Environment(str(env_file)).get_target("main")
    try:
        demo = target.get_driver("RKLLMDemoDriver", activate=False)
        npu = target.get_driver("NPUDriver", activate=False)
        assert (demo.load_timeout, demo.turn_timeout, demo.rknn_core_num) == (123.0, 45.0, 1)
        assert npu.sample_interval == 0.37
    finally:
        target.cleanup()


def test_the_committed_twin_env_sets_the_demo_timeouts():
    for name in ("twin.yaml", "farm.yaml"):
        drivers = LabEnv.load(REPO / "env" / name).main["drivers"]
        assert drivers["RKLLMDemoDriver"] == {"load_timeout": 180, "turn_timeout": 180}, name


class _RecordingDemo:
    """Stands in for the demo driver to see what the runner asks of it (logic only)."""

    def __init__(self):
        self.calls = []

    def run_text(self, *args, **kwargs):
        self.calls.append(("run_text", args, kwargs))
        raise_demo_error()

    run_multimodal = run_text


def raise_demo_error():
    from hil.lab.rkllmdemo import DemoError

    raise DemoError("stopped here on purpose")


class _QuietNPU:
    @contextlib.contextmanager
    def sample(self):
        yield SimpleNamespace(samples=[])


def test_the_runner_leaves_timeouts_and_versions_to_the_driver():
    """No timeout, demo version or platform passed per call: the driver's own (env) values apply."""
    demo = _RecordingDemo()
    layout = SimpleNamespace(demo_dir="/d/demo", llm="/d/m.rkllm", vision="/d/v.rknn", picture=lambda n: f"/d/{n}")
    runner = InferenceRunner(demo=demo, npu=_QuietNPU(), layout=layout, pictures=[{"file": "red-circle.png"}],
                             golden=GoldenAnswers(model="m", runtime="1.2.1"))
    run = runner.text_session(InferenceRun(kind="text", prompts=prompts.text_prompts()[:1]))
    assert run.error and "stopped here on purpose" in run.error
    (_, _, kwargs), = demo.calls
    assert not {"timeout", "load_timeout", "demo_version", "platform", "core_num"} & set(kwargs), kwargs


def test_lab_env_reads_the_suite_settings_once(env_file, monkeypatch):
    monkeypatch.delenv("LG_PLACE", raising=False)
    env = LabEnv.load(env_file)
    assert env.board_type == "myd-lr3576"
    assert env.deploy_dir == "/data/hil"
    assert env.models_dir == env_file.parent / "models"  # relative to the env file, not the working folder
    assert env.board_id() == "myd-lr3576"
    assert env.board_id("twin-3") == "twin-3"
    assert env.twin_bench is None and not env.is_farm


def test_farm_env_takes_its_place_from_lg_place(monkeypatch):
    env = LabEnv.load(REPO / "env" / "farm.yaml")
    assert env.is_farm and env.fixed_place is None
    monkeypatch.setenv("LG_PLACE", "twin-2")
    assert env.board_id() == "twin-2"


def test_a_broken_env_is_named_with_its_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets:\n  main:\n    drivers: {\n  oops\n")
    with pytest.raises(EnvError, match=r"bad.yaml line \d+, column \d+: not valid YAML"):
        LabEnv.load(bad)


def _options(**kw):
    return SimpleNamespace(**{"demo_dir": None, "llm": None, "vision": None, "models_dir": None, **kw})


def test_the_sdk_build_and_the_model_files_come_from_the_env_or_the_options(tmp_path):
    """``demo_dir``, ``llm`` and ``vision`` are target options as well as options; the options win."""
    sdk = deploykit.write_sdk(tmp_path / "sdk")
    llm, vision = models.write_model(tmp_path / "zoo", "qwen2.5-vl-3b-w4a16_level1_rk3576")
    env_file = tmp_path / "board.yaml"
    env_file.write_text(ENV.replace("      models_dir: models\n",
                                    f"      demo_dir: sdk/deploy/install/demo_Linux_aarch64\n      llm: {llm}\n"))
    env = LabEnv.load(env_file)
    kit = config.load_kit(_options(), env)
    assert kit.runtime.demo_dir == sdk
    (model,) = kit.models.values()
    assert (model.name, model.vision) == ("qwen2.5-vl-3b-w4a16_level1_rk3576", vision), "its encoder beside it, by name"
    other, _ = models.write_model(tmp_path / "other", "qwen2-vl-7b-instruct_w4a16_rk3576")
    assert config.load_kit(_options(llm=str(other)), env).model(None).name == "qwen2-vl-7b-instruct_w4a16_rk3576"


@pytest.mark.parametrize("given, words", [
    ({"vision": "x.rknn"}, "--vision needs --llm"),
    ({"llm": "x.rkllm", "models_dir": "zoo"}, "not both"),
    ({"llm": "x.rkllm"}, "no demo build: pass --demo-dir"),
    ({"demo_dir": "SDK"}, "no model: pass --llm"),
])
def test_a_missing_or_contradicting_model_option_is_named(tmp_path, env_file, given, words):
    sdk = deploykit.write_sdk(tmp_path / "sdk")
    given = {k: (str(sdk) if v == "SDK" else v) for k, v in given.items()}
    env_file.write_text(ENV.replace("      models_dir: models\n", ""))
    with pytest.raises(config.ConfigError, match=words):
        config.load_kit(_options(**given), LabEnv.load(env_file))
