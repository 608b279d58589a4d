"""The environments load in labgrid as committed, and the suite documents its options."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from labgrid import Environment

from hil.paths import REPO
from hil.twin import models
from hil.twin import vision as twinvision
from selftest.unit.test_rockchip_rkfw import update_img


def test_real_board_template_loads_and_binds_every_driver():
    target = Environment(str(REPO / "env" / "rk3576.yaml")).get_target("main")
    try:
        strategy = target.get_driver("RK3576Strategy", activate=False)
        assert type(strategy.flasher).__name__ == "RKDeveloptoolDriver"
        assert type(strategy.maskrom).__name__ == "HIDRelayDriver"
        assert type(strategy.ssh).__name__ == "ParamikoSSHDriver"
        assert type(strategy.uboot).__name__ == "UBootDriver"
        # tests ask for CommandProtocol: SSH must win over the serial shell
        assert type(target.get_driver("CommandProtocol", activate=False)).__name__ == "ParamikoSSHDriver"
        assert type(target.get_driver("NPUDriver", activate=False).command).__name__ == "ParamikoSSHDriver"
    finally:
        target.cleanup()


def test_env_files_keep_secrets_out_of_the_real_board_template():
    text = (REPO / "env" / "rk3576.yaml").read_text()
    assert "password:" not in text.replace("#   password:", "")


def test_suite_options_are_in_pytest_help():
    out = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=REPO, capture_output=True, text=True,
                         timeout=120).stdout
    for option in ("--image=NAME", "--no-flash", "--model=NAME", "--models-dir=DIR", "--limits=FILE",
                   "--demo-dir=DIR", "--llm=FILE.rkllm", "--vision=FILE.rknn", "--golden-dir"):
        assert option in out, f"{option} missing from pytest --help"
    assert "RK3576 qualification suite" in out


def _collected(env_file, cwd) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--lg-env", str(env_file), "--collect-only", "-q"],
                          cwd=cwd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return sorted(line for line in proc.stdout.splitlines() if "::" in line)


def test_an_env_file_outside_the_project_collects_exactly_the_suite(tmp_path):
    """Labs keep env files elsewhere: the run is still the suite's, rooted in the project."""
    outside = tmp_path / "etc-labgrid" / "rk3576-01.yaml"
    outside.parent.mkdir()
    outside.write_text((REPO / "env" / "twin.yaml").read_text())
    suite = _collected(REPO / "env" / "twin.yaml", REPO)
    assert suite and all(n.startswith("tests/") for n in suite), suite[:5]
    assert _collected(outside, REPO) == suite
    assert _collected(outside, REPO / "selftest") == suite
    assert _collected(REPO / "env" / "twin.yaml", REPO / "selftest") == suite


BAD_START = [
    ("env-yaml", {"env": "  RKLLMDemoDriver:\n    load_timeout: [180\n"}, [],
     r"line \d+, column \d+: not valid YAML"),
    ("missing-driver", {"replace": ("      NPUDriver:\n", "      NPUDriverX:\n")}, [],
     "targets.main.drivers lacks NPUDriver"),
    ("repeat", {}, ["--repeat", "0"], "--repeat must be at least 1"),
    ("limits-nan", {"limits": "limits:\n  - text_decode_tokens_per_s: {min: .nan}\n"}, [],
     "text_decode_tokens_per_s.min must be a finite number, got nan"),
    ("limits-name", {"limits": "limits:\n  - text_decode_token_per_s: {min: 1}\n"}, [],
     "did you mean 'text_decode_tokens_per_s'"),
    ("baseline", {}, ["--baseline", "/etc/hostname"], "--baseline /etc/hostname"),
    ("update-img-for-rk3588", {"update.img": 0x33353838}, ["--image", "{tmp}/update.img"],
     "is built for RK3588 but the board is RK3576"),
    ("update-img-without-upgrade-tool", {"update.img": 0x33353736}, ["--image", "{tmp}/update.img"],
     "flashed with 'upgrade_tool uf' (UpgradeToolDriver"),
    ("vision-without-llm", {}, ["--vision", "{tmp}/x.rknn"], "--vision needs --llm"),
    ("encoder-cut-short", {"cut-encoder": True}, ["--llm", "{tmp}/zoo/qwen2-vl-2b-instruct_w4a16_rk3576.rkllm"],
     "qwen2_vl_2b_vision_rk3576.rknn: cut short: the header says blob"),
    ("vision-models-empty", {}, ["--vision-models", "{tmp}"], "--vision-models {tmp}: no .rknn file in it"),
    ("vision-model-cut-short", {"cut-vision-model": True}, ["--vision-models", "{tmp}/vision"],
     "yolov8n_rk3576.rknn: cut short"),
    ("vision-without-benchmark", {}, ["--rknn-benchmark", "{tmp}"],
     "no rknn_benchmark in it (pass the folder rknpu2's examples/rknn_benchmark/build-linux.sh installs"),
]


@pytest.mark.parametrize("case, edit, args, message", BAD_START, ids=[c[0] for c in BAD_START])
def test_what_can_be_checked_without_the_lab_stops_the_run_before_a_bench_starts(tmp_path, case, edit, args,
                                                                                message):
    from hil.twin.bench import free_base_port

    base = free_base_port(29000)
    text = (REPO / "env" / "twin.yaml").read_text().replace("base_port: 21000", f"base_port: {base}")
    if "replace" in edit:
        text = text.replace(*edit["replace"])
    if "env" in edit:
        text += edit["env"]
    env_file = tmp_path / "twin.yaml"
    env_file.write_text(text)
    if "limits" in edit:
        (tmp_path / "limits.yaml").write_text(edit["limits"])
        args = [*args, "--limits", str(tmp_path / "limits.yaml")]
    if "update.img" in edit:
        update_img(tmp_path, chip=edit["update.img"], loader_chip=edit["update.img"])
    if "cut-encoder" in edit:
        _, vision = models.write_model(tmp_path / "zoo", "qwen2-vl-2b-instruct_w4a16_rk3576")
        vision.write_bytes(vision.read_bytes()[:-100])
    if "cut-vision-model" in edit:
        (path,) = twinvision.write(tmp_path / "vision", ["yolov8n_rk3576"])
        path.write_bytes(path.read_bytes()[:-100])
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    message = message.replace("{tmp}", str(tmp_path))
    bench_dir = tmp_path / "bench"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--lg-env", str(env_file), *args,
                           f"--results={tmp_path / 'results'}"], cwd=REPO, capture_output=True, text=True,
                          timeout=180, env={**__import__("os").environ, "HIL_BENCH_DIR": str(bench_dir)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out[-2000:]  # pytest's usage error
    assert re.search(message if case == "env-yaml" else re.escape(message), out), out[-2000:]
    assert "Traceback" not in out, out[-2000:]
    assert not (bench_dir / "state.json").exists() and not list(bench_dir.glob("board-*")), "a bench was started"
