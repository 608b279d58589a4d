"""The twin's synthetic models and the pictures and prompts they answer."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from PIL import Image

from hil.kit import pictures
from hil.paths import IMAGES_DIR
from hil.twin import models

RK3576_MODELS = [m for m in models.MODELS.values() if m.target_platform == "RK3576"]


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_rkllm_header_round_trip(name):
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


def test_wrong_soc_model_is_built_for_rk3588():
    fields = models.parse(models.rkllm_bytes(models.MODELS["qwen2-vl-2b-w8a8-rk3588"]))
    assert (fields["target_platform"], fields["npu_core_num"], fields["model_dtype"]) == ("RK3588", "3", "W8A8")
    vision = models.parse(models.rknn_bytes(models.MODELS["qwen2-vl-2b-w8a8-rk3588"]))
    assert vision["target_platform"] == "rk3588"


@pytest.mark.parametrize(
    "toolkit, fmt", [("1.1.4", 1), ("1.2.0", 2), ("1.2.1", 2), ("1.2.3", 2), ("1.3.0", 3), ("0.9.0", 0)]
)
def test_format_follows_the_toolkit(toolkit, fmt):
    assert models.model_format(toolkit) == fmt
    spec = models.MODELS["qwen2-vl-2b-w4a16-rk3576"].evolve(toolkit_version=toolkit)
    assert models.parse(models.rkllm_bytes(spec))["format"] == str(fmt)


@pytest.mark.parametrize(
    "name, dims, output",
    [
        ("qwen2-vl-2b-w4a16-rk3576", "196,1536", "54127"),
        ("qwen2.5-vl-3b-w4a16-rk3576", "196,2048", "34548"),
        ("qwen2-vl-7b-w4a16-rk3576", "196,3584", "61035"),
    ],
)
def test_vision_encoder_dims_per_family(name, dims, output):
    fields = models.parse(models.rknn_bytes(models.MODELS[name]))
    assert fields["kind"] == "rknn"
    assert fields["version"] == "6"
    assert fields["toolkit_version"] == "2.3.2"
    assert fields["target_platform"] == "rk3576"
    assert fields["input0"] == "pixel|4|1,392,392,3|NHWC|FP16"
    assert fields["output0"] == f"{output}|2|{dims}|UNDEFINED|FP16"


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_files_are_deterministic_and_small(name, tmp_path):
    spec = models.MODELS[name]
    assert models.rkllm_bytes(spec) == models.rkllm_bytes(spec)
    assert models.rknn_bytes(spec) == models.rknn_bytes(spec)
    a = models.write_model(tmp_path / "a", name)
    b = models.write_model(tmp_path / "b", name)
    for f in models.files_of(name):
        assert (a / f).read_bytes() == (b / f).read_bytes()
        assert 256 * 1024 <= (a / f).stat().st_size <= 2 * 1024 * 1024
    assert (a / "model.json").read_text() == (b / "model.json").read_text()


def test_model_json_describes_the_files(tmp_path):
    directory = models.write_model(tmp_path, "qwen2.5-vl-3b-w4a16-rk3576")
    meta = json.loads((directory / "model.json").read_text())
    assert meta["embed_size"] == 2048 and meta["image_tokens"] == 196
    for role in ("llm", "vision"):
        entry = meta["files"][role]
        data = (directory / entry["path"]).read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["corrupt"] is False


def test_models_differ_from_each_other():
    digests = {hashlib.sha256(models.rkllm_bytes(s)).hexdigest() for s in models.MODELS.values()}
    assert len(digests) == len(models.MODELS)


def test_corrupt_model_has_no_magic(tmp_path):
    directory = models.write_corrupt_model(tmp_path)
    llm_name, vision_name = models.files_of(directory.name)
    data = (directory / llm_name).read_bytes()
    assert not data.startswith(models.MAGIC_RKLLM)
    with pytest.raises(models.ModelFormatError):
        models.parse(data)
    assert models.parse((directory / vision_name).read_bytes())["kind"] == "rknn"
    assert json.loads((directory / "model.json").read_text())["corrupt"] is True


def test_header_ends_before_the_filler():
    data = models.rkllm_bytes(models.MODELS["qwen2-vl-2b-w4a16-rk3576"])
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
    llm = models.rkllm_bytes(models.MODELS["qwen2-vl-2b-w4a16-rk3576"])
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
