"""hil.kit.bundle: the SDK's demo build and the model zoo's files, taken as they are on disk."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from hil.kit import bundle
from hil.kit.bundle import KitError
from hil.twin import deploykit, models

SAMPLES = Path(__file__).parent / "rknn_samples"
M2B, M3B, M7B, M3588 = ("qwen2-vl-2b-instruct_w4a16_rk3576", "qwen2.5-vl-3b-w4a16_level1_rk3576",
                        "qwen2-vl-7b-instruct_w4a16_rk3576", "qwen2-vl-2b-instruct_w8a8_rk3588")


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    """A model zoo folder: every twin model's .rkllm and .rknn side by side."""
    folder = tmp_path_factory.mktemp("zoo")
    models.write_models(folder)
    return folder


def test_the_sdk_build_is_read_from_its_libraries(tmp_path):
    demo = deploykit.write_sdk(tmp_path / "sdk", runtime="1.2.3", rknn_runtime="2.3.2")
    assert demo == tmp_path / "sdk" / "deploy" / "install" / "demo_Linux_aarch64"
    runtime = bundle.load_runtime(demo)
    assert (runtime.rkllm_runtime, runtime.rknn_runtime, runtime.demo_version) == ("1.2.3", "2.3.2", "1.2.3")
    assert runtime.demo_embed_size is None
    assert runtime.sources["rkllm_runtime"] == "lib/librkllmrt.so"
    assert set(runtime.files()) == {"demo_Linux_aarch64/demo", "demo_Linux_aarch64/imgenc",
                                    "demo_Linux_aarch64/lib/librkllmrt.so", "demo_Linux_aarch64/lib/librknnrt.so"}


def test_the_library_wins_over_a_runtime_yaml_that_contradicts_it(tmp_path):
    demo = deploykit.write_sdk(tmp_path / "sdk", runtime="1.2.1")
    (demo / "runtime.yaml").write_text("rkllm_runtime: 1.2.1\n")
    assert bundle.load_runtime(demo).sources["rkllm_runtime"] == "lib/librkllmrt.so"
    (demo / "runtime.yaml").write_text("rkllm_runtime: 1.3.0\n")
    with pytest.raises(KitError, match="runtime.yaml says rkllm_runtime 1.3.0 but .*librkllmrt.so is 1.2.1"):
        bundle.load_runtime(demo)


def test_runtime_yaml_overrides_what_the_files_cannot_say(tmp_path):
    demo = deploykit.write_sdk(tmp_path / "sdk", runtime="1.2.1")
    (demo / "runtime.yaml").write_text("demo_version: 1.2.1\ndemo_embed_size: 2048\n")
    runtime = bundle.load_runtime(demo)
    assert (runtime.demo_embed_size, runtime.sources["demo_version"]) == (2048, "runtime.yaml (demo_version)")
    assert "demo_Linux_aarch64/runtime.yaml" not in runtime.files(), "the override is not deployed"
    # the older layout: runtime/runtime.yaml beside runtime/demo_Linux_aarch64
    old = tmp_path / "models" / "runtime"
    shutil.copytree(demo, old / "demo_Linux_aarch64")
    (old / "demo_Linux_aarch64" / "runtime.yaml").unlink()
    (old / "demo_Linux_aarch64" / "lib" / "librknnrt.so").unlink()  # no version to read: runtime.yaml says it
    (old / "runtime.yaml").write_text("rknn_runtime: 2.3.0\n")
    assert bundle.load_runtime(old / "demo_Linux_aarch64").rknn_runtime == "2.3.0"


@pytest.mark.parametrize("breakage, words", [
    ("no folder", ["is not a folder", "deploy/install/demo_Linux_aarch64"]),
    ("no demo", ["has no 'demo' binary", "build-linux.sh"]),
    ("no lib", ["lib/librkllmrt.so is missing", "rkllm_runtime: X.Y.Z"]),
    ("lib without version", ["has no version string", "runtime.yaml"]),
])
def test_a_broken_sdk_build_is_named(tmp_path, breakage, words):
    demo = deploykit.write_sdk(tmp_path / "sdk")
    if breakage == "no folder":
        shutil.rmtree(demo)
    elif breakage == "no demo":
        (demo / "demo").unlink()
    elif breakage == "no lib":
        (demo / "lib" / "librkllmrt.so").unlink()
    else:
        (demo / "lib" / "librkllmrt.so").write_bytes(b"\x7fELF" + b"\0" * 4096)
    with pytest.raises(KitError) as e:
        bundle.load_runtime(demo)
    for word in words:
        assert word in str(e.value)


def test_a_model_zoo_folder_pairs_each_llm_with_its_encoder(zoo):
    found = bundle.load_models(zoo)
    assert sorted(found) == sorted([M2B, M3B, M7B, M3588])
    assert {n: m.vision.name for n, m in found.items()} == {
        M2B: "qwen2_vl_2b_vision_rk3576.rknn", M3B: "qwen2_5_vl_3b_vision_rk3576.rknn",
        M7B: "qwen2_vl_7b_vision_rk3576.rknn", M3588: "qwen2_vl_2b_vision_rk3588.rknn"}
    assert found[M3B].info.embed_size == 2048 and found[M3B].info.image_tokens == 196
    assert found[M3588].info.vision_platforms == ("rk3588",)
    assert found[M2B].llm_file.toolkit_version == "1.2.1"


def test_pairing_rules(tmp_path):
    def p(*names):
        return [tmp_path / n for n in names]

    one = bundle.pair(p("anything.rkllm"), p("encoder.rknn"))
    assert one == {tmp_path / "anything.rkllm": tmp_path / "encoder.rknn"}, "one LLM and one encoder pair"
    assert bundle.pair(p("anything.rkllm"), p("encoder.rknn"), lone=False) == {tmp_path / "anything.rkllm": None}
    text_only = bundle.pair(p("qwen2.5-3b-instruct_w8a8_rk3576.rkllm", "qwen2-vl-2b-instruct_w4a16_rk3576.rkllm"),
                            p("qwen2_vl_2b_vision_rk3576.rknn"))
    assert text_only[tmp_path / "qwen2.5-3b-instruct_w8a8_rk3576.rkllm"] is None
    with pytest.raises(KitError, match="alike: say which in .*models.yaml"):
        bundle.pair(p("qwen2-vl-2b-a.rkllm", "b.rkllm"), p("qwen2_vl_2b_vision.rknn", "qwen2-vl-2b-vision.rknn"))


def test_models_yaml_names_and_pairs_and_overrides(tmp_path):
    llm, vision = models.write_model(tmp_path, M2B)
    llm.rename(tmp_path / "mine.rkllm")
    vision.rename(tmp_path / "encoder-v2.rknn")
    (tmp_path / "models.yaml").write_text(
        "models:\n  my-vlm:\n    llm: mine.rkllm\n    vision: encoder-v2.rknn\n    image_tokens: 256\n")
    model = bundle.load_models(tmp_path)["my-vlm"]
    assert (model.llm.name, model.vision.name, model.info.image_tokens) == ("mine.rkllm", "encoder-v2.rknn", 256)
    (tmp_path / "models.yaml").write_text("models:\n  my-vlm:\n    llm: mine.rkllm\n    colour: red\n")
    with pytest.raises(KitError, match="unknown override colour"):
        bundle.load_models(tmp_path)
    (tmp_path / "models.yaml").write_text("models:\n  my-vlm:\n    llm: gone.rkllm\n")
    with pytest.raises(KitError, match="names gone.rkllm, which is not in"):
        bundle.load_models(tmp_path)


def test_bad_model_files_are_named(tmp_path):
    llm, vision = models.write_model(tmp_path, M2B)
    data = vision.read_bytes()
    vision.write_bytes(data[: len(data) // 2])
    with pytest.raises(KitError, match=vision.name):
        bundle.read_model(llm, vision)
    vision.write_bytes(b"RKNX" + b"\0" * 4092)
    with pytest.raises(KitError, match="RKNN3.*rknn-toolkit2"):
        bundle.read_model(llm, vision)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KitError, match="no .rkllm model"):
        bundle.load_models(empty)


def test_a_real_rockchip_encoder_is_read_for_its_facts(tmp_path):
    llm, _ = models.write_model(tmp_path, M2B)
    model = bundle.read_model(llm, SAMPLES / "tk2_multiple_input_demo_RK3576.rknn")
    assert model.info.vision_platforms == ("rk3576",)
    assert (model.info.image_tokens, model.info.embed_size) == (128, 128), "the output [1, 8, 128, 128]'s last two"


def test_picking_a_model(zoo, tmp_path):
    kit = bundle.load(deploykit.write_sdk(tmp_path / "sdk"), zoo)
    assert kit.model(None, default=M2B).name == M2B
    assert kit.model(M3B).name == M3B
    with pytest.raises(KitError, match="holds 4 models .* pick one with --model"):
        kit.model(None)
    with pytest.raises(KitError, match="'nope' is not in .*; models there: .*instruct_w8a8_rk3588"):
        kit.model("nope")
    single = tmp_path / "single"
    models.write_model(single, M7B)
    assert bundle.load_models(single)[M7B].vision.name == "qwen2_vl_7b_vision_rk3576.rknn"


def test_the_deploy_layout_keeps_the_model_zoo_names(zoo, tmp_path):
    kit = bundle.load(deploykit.write_sdk(tmp_path / "sdk"), zoo)
    layout = bundle.DeployLayout(remote_dir="/userdata/hil", kit=kit, model=kit.model(M3B))
    assert layout.llm == f"/userdata/hil/models/{M3B}/{M3B}.rkllm"
    assert layout.vision == f"/userdata/hil/models/{M3B}/qwen2_5_vl_3b_vision_rk3576.rknn"
    assert "demo_Linux_aarch64/lib/librkllmrt.so" in layout.files()
    assert struct.unpack_from("<Q", layout.files()[f"models/{M3B}/qwen2_5_vl_3b_vision_rk3576.rknn"].read_bytes(),
                              8)[0] == 6
