"""The twin's synthetic models and the pictures and prompts they answer."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from PIL import Image

from hil.kit import pictures
from hil.paths import IMAGES_DIR
from hil.rockchip import inspect, rkllmfile, rknnfile
from hil.twin import models

RK3576_MODELS = [m for m in models.MODELS.values() if m.target_platform == "RK3576"]


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_rkllm_private_section_round_trip(name):
    spec = models.MODELS[name]
    fields = models.parse(models.rkllm_bytes(spec))
    assert fields["kind"] == "rkllm"
    assert fields["format"] == "2"
    assert fields["toolkit_version"] == spec.toolkit_version
    assert fields["target_platform"] == spec.target_platform
    assert fields["max_context_limit"] == str(spec.max_context_limit)
    assert fields["npu_core_num"] == str(spec.npu_core_num)
    assert fields["model_dtype"] == spec.dtype
    assert fields["family"] == spec.family
    assert fields["hidden_size"] == str(spec.embed_size)
    assert fields["answers"], "a model without answers would only give generic text"


@pytest.mark.parametrize("toolkit, ending", [("1.2.1", b"rkllm-toolkit version: 1.2.1\0"),
                                             ("1.3.0", b"rkllm-toolkit version: 1.3.0")])
def test_rkllm_ends_with_the_real_footer_read_by_the_real_reader(toolkit, ending, tmp_path):
    spec = models.MODELS["qwen2-vl-2b-instruct_w4a16_rk3576"].evolve(toolkit_version=toolkit)
    data = models.rkllm_bytes(spec)
    assert data.endswith(ending)
    path = tmp_path / "m.rkllm"
    path.write_bytes(data)
    assert rkllmfile.read_rkllm(path).toolkit_version == toolkit


def test_wrong_soc_model_is_built_for_rk3588(tmp_path):
    spec = models.MODELS["qwen2-vl-2b-instruct_w8a8_rk3588"]
    fields = models.parse(models.rkllm_bytes(spec))
    assert (fields["target_platform"], fields["npu_core_num"], fields["model_dtype"]) == ("RK3588", "3", "W8A8")
    _, vision = models.write_model(tmp_path, spec.name)
    assert vision.name == "qwen2_vl_2b_vision_rk3588.rknn"
    assert rknnfile.read_rknn(vision).target_platform == ["rk3588"]


@pytest.mark.parametrize(
    "toolkit, fmt", [("1.1.4", 1), ("1.2.0", 2), ("1.2.1", 2), ("1.2.3", 2), ("1.3.0", 3), ("0.9.0", 0)]
)
def test_format_follows_the_toolkit(toolkit, fmt):
    assert models.model_format(toolkit) == fmt
    spec = models.MODELS["qwen2-vl-2b-instruct_w4a16_rk3576"].evolve(toolkit_version=toolkit)
    assert models.parse(models.rkllm_bytes(spec))["format"] == str(fmt)


@pytest.mark.parametrize(
    "name, embed, output, vision_file",
    [
        ("qwen2-vl-2b-instruct_w4a16_rk3576", 1536, "54127", "qwen2_vl_2b_vision_rk3576.rknn"),
        ("qwen2.5-vl-3b-w4a16_level1_rk3576", 2048, "34548", "qwen2_5_vl_3b_vision_rk3576.rknn"),
        ("qwen2-vl-7b-instruct_w4a16_rk3576", 3584, "61035", "qwen2_vl_7b_vision_rk3576.rknn"),
    ],
)
def test_vision_encoder_is_a_real_container(name, embed, output, vision_file, tmp_path):
    """The real reader reads the twin's encoder as it reads Rockchip's own files."""
    llm, vision = models.write_model(tmp_path, name)
    assert (llm.name, vision.name) == (f"{name}.rkllm", vision_file)
    info = rknnfile.read_rknn(vision)
    assert (info.format, info.container_version, info.encrypted) == ("rknn", 6, False)
    assert info.toolkit_version == "2.3.2"
    assert info.target_platform == ["rk3576"]
    assert [(t.name, tuple(t.shape)) for t in info.inputs] == [("pixel", (1, 3, 392, 392))]
    assert [(t.name, tuple(t.shape)) for t in info.outputs] == [(output, (196, embed))]


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_files_are_deterministic_and_small(name, tmp_path):
    spec = models.MODELS[name]
    assert models.rkllm_bytes(spec) == models.rkllm_bytes(spec)
    assert models.rknn_bytes(spec) == models.rknn_bytes(spec)
    a = models.write_model(tmp_path / "a", name)
    b = models.write_model(tmp_path / "b", name)
    for x, y in zip(a, b):
        assert x.read_bytes() == y.read_bytes()
        assert 256 * 1024 <= x.stat().st_size <= 2 * 1024 * 1024


def test_models_differ_from_each_other():
    digests = {hashlib.sha256(models.rkllm_bytes(s)).hexdigest() for s in models.MODELS.values()}
    assert len(digests) == len(models.MODELS)


def test_corrupt_model_has_no_magic(tmp_path):
    llm, vision = models.write_corrupt_model(tmp_path)
    data = llm.read_bytes()
    assert not data.startswith(models.MAGIC_RKLLM)
    with pytest.raises(models.ModelFormatError):
        models.parse(data)
    assert rknnfile.read_rknn(vision).target_platform == ["rk3576"]


def test_private_section_ends_before_the_filler():
    data = models.rkllm_bytes(models.MODELS["qwen2-vl-2b-instruct_w4a16_rk3576"])
    end = data.index(b"\nend\n") + 5
    assert end <= models.HEADER_LIMIT
    assert b"\0" not in data[:end], "busybox awk stops reading a line at NUL"
    assert len(data) - end > 1024 * 1024


def test_tokenize_round_trips_and_splits_like_the_stand_in():
    text = 'The image shows "RK3576".\n白雪 12x'
    tokens = models.tokenize(text)
    assert "".join(tokens) == text
    assert tokens == ["The", " image", " shows", ' "', "RK", "3", "5", "7", "6", '"', ".", "\n", "白", "雪",
                      " 1", "2", "x"]


def test_prompt_tokens_reproduce_the_rk3576_log():
    # DShanPi RK3576 log: 223 prefill tokens for an image question (19 template, 196 + 2 image)
    assert 19 + models.prompt_tokens(models.EN_IMAGE_PROMPT) + 196 + 2 == 223


def _prompts():
    return yaml.safe_load((IMAGES_DIR / "prompts.yaml").read_text(encoding="utf-8"))["prompts"]


@pytest.mark.parametrize("spec", RK3576_MODELS, ids=lambda s: s.name)
@pytest.mark.parametrize("runtime", ["1.1.4", "1.2.1", "1.3.0"])
def test_text_prompts_have_answers_with_their_keywords(spec, runtime):
    llm = models.rkllm_bytes(spec)
    for prompt in (p for p in _prompts() if p["kind"] == "text"):
        text = models.answer(llm, prompt["text"], runtime=runtime)
        assert text != models.generic_answer(prompt["text"]), prompt["id"]
        for word in prompt["keywords"]:
            assert word.lower() in text.lower(), (prompt["id"], word, text)


@pytest.mark.parametrize("spec", RK3576_MODELS, ids=lambda s: s.name)
@pytest.mark.parametrize("runtime", ["1.1.4", "1.2.1", "1.3.0"])
def test_pictures_have_answers_with_their_keywords(spec, runtime):
    llm = models.rkllm_bytes(spec)
    image_prompts = [p for p in _prompts() if p["kind"] == "image"]
    assert {p["text"] for p in image_prompts} == {models.EN_IMAGE_PROMPT, models.ZH_IMAGE_PROMPT}
    for pic in pictures.load():
        for prompt in image_prompts:
            text = models.answer(llm, prompt["text"], pic["sha256"], runtime=runtime)
            assert text != models.UNKNOWN_PICTURE
            for word in pic[prompt["keywords_from"]]:
                assert word.lower() in text.lower(), (pic["file"], word, text)


def test_answers_differ_by_runtime_or_quantization_but_stay_on_topic():
    answers = set()
    for spec in models.MODELS.values():
        llm = models.rkllm_bytes(spec)
        for runtime in ("1.1.4", "1.2.1", "1.3.0"):
            for pic in pictures.load():
                answers.add((pic["file"], models.answer(llm, models.EN_IMAGE_PROMPT, pic["sha256"], runtime=runtime)))
    per_picture = {f: {a for g, a in answers if g == f} for f, _ in answers}
    assert any(len(v) > 1 for v in per_picture.values())


def test_unknown_prompt_and_picture_get_deterministic_fallbacks():
    llm = models.rkllm_bytes(models.MODELS["qwen2-vl-2b-instruct_w4a16_rk3576"])
    assert models.answer(llm, "Tell me a joke") == models.generic_answer("Tell me a joke")
    assert models.generic_answer("Tell me a joke") == models.generic_answer("Tell me a joke")
    assert "Tell me a joke" in models.generic_answer("Tell me a joke")
    assert models.answer(llm, "<image>Describe it", "0" * 64) == models.UNKNOWN_PICTURE
    assert models.answer(llm, "", multimodal=False) == models.EMPTY_PROMPT


def test_pictures_manifest_matches_the_files():
    entries = pictures.load()
    assert {e["file"] for e in entries} == set(pictures.PICTURES)
    for e in entries:
        assert hashlib.sha256(e["path"].read_bytes()).hexdigest() == e["sha256"], e["file"]
        with Image.open(e["path"]) as img:
            assert img.format == "PNG" and img.size == (392, 392) and img.mode == "RGB"
        assert e["keywords"] and e["keywords_zh"] and e["description"]


def test_non_square_pictures_are_padded_with_grey_as_the_demo_does():
    house = next(e for e in pictures.load() if e["file"] == "house.png")
    assert house["source_size"] == [480, 360]
    with Image.open(house["path"]) as img:
        assert img.getpixel((196, 2)) == (128, 128, 128)
        assert img.getpixel((196, 389)) == (128, 128, 128)
        assert img.getpixel((196, 60)) != (128, 128, 128)


def test_preprocess_pads_then_resizes():
    src = Image.new("RGB", (200, 100), (255, 0, 0))
    out = pictures.preprocess(src)
    assert out.size == (392, 392)
    assert out.getpixel((196, 5)) == (128, 128, 128)
    assert out.getpixel((196, 196)) == (255, 0, 0)


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_hil_inspect_reads_each_twin_model_as_a_real_one(name, tmp_path, capsys):
    llm, vision = models.write_model(tmp_path, name)
    spec = models.MODELS[name]
    assert inspect.main([str(vision), str(llm)]) == 0
    decoder = json.JSONDecoder()
    out, objects = capsys.readouterr().out.strip(), []
    while out:
        obj, end = decoder.raw_decode(out)
        objects.append(obj)
        out = out[end:].strip()
    rknn, rkllm = objects
    assert {k: rknn[k] for k in ("format", "container_version", "target_platform", "toolkit_version", "encrypted")} == {
        "format": "rknn", "container_version": 6, "target_platform": [spec.target_platform.lower()],
        "toolkit_version": "2.3.2", "encrypted": False}
    assert rknn["inputs"] == [{"name": "pixel", "shape": [1, 3, 392, 392]}]
    assert rknn["outputs"] == [{"name": spec.fam.output_name, "shape": [196, spec.embed_size]}]
    assert (rkllm["format"], rkllm["toolkit_version"], rkllm["size"]) == ("rkllm", "1.2.1", llm.stat().st_size)
