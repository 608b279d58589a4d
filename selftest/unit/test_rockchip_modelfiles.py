"""The host-side readers of real model files and runtime libraries (hil.rockchip.rknnfile,
rkllmfile, versions.library_version) and ``hil inspect``, against the five Rockchip-built
``.rknn`` samples (``rknn_samples/``) and files crafted per model-files.md: a good file is read
right, each bad one is refused (or classified) with its cause named."""

from __future__ import annotations

import builtins
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from hil.rockchip import inspect, rknnfile, versions
from hil.rockchip.rkllmfile import NOTE, RkllmFile, read_rkllm
from hil.rockchip.rknnfile import ModelFileError, RknnFile, Tensor, read_rknn

SAMPLES = Path(__file__).parent / "rknn_samples"
DEMO_3576 = SAMPLES / "tk2_multiple_input_demo_RK3576.rknn"
MULTI_IN = [Tensor("input.1", (1, 1, 128, 128)), Tensor("input", (1, 3, 128, 128))]
MULTI_OUT = [Tensor("8", (1, 8, 128, 128))]
DUAL_IN = [Tensor("0", (1, 3, 10, 10)), Tensor("1", (1, 3, 10, 10))]
DUAL_OUT = [Tensor("2", (1, 3, 10, 10)), Tensor("3", (1, 3, 10, 10))]
SAMPLE_FACTS = {  # file: (target_platform, toolkit, compiler, inputs, outputs)
    "tk2_multiple_input_demo_RK3576.rknn": (["rk3576"], "1.6.2-source_code", "1.6.2b0 (6e4d1b714@2024-02-26T09:11:35)",
                                            MULTI_IN, MULTI_OUT),
    "tk2_multiple_input_demo_RK3588.rknn": (["rk3588"], "1.6.2-source_code", "1.6.2b0 (6e4d1b714@2024-02-26T09:11:35)",
                                            MULTI_IN, MULTI_OUT),
    "tk2_multiple_input_demo_RK3566_RK3568.rknn": (["rk3566"], "1.6.2-source_code",
                                                   "1.6.2b0 (6e4d1b714@2024-02-26T09:11:35)", MULTI_IN, MULTI_OUT),
    "tk2_dual_residual_custom_RK3576.rknn": (["rk3576"], "1.6.2-source_code", "1.6.2b0 (b1e4be9ca@2024-03-04T09:14:44)",
                                             DUAL_IN, DUAL_OUT),
    "tk2_dual_residual_custom_RK3588.rknn": (["rk3588"], "1.6.1-source_code",
                                             "1.6.1b12 (2de89fcd7@2024-02-21T07:13:29)", DUAL_IN, DUAL_OUT),
}


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused(path, *words, reader=read_rknn) -> str:
    with pytest.raises(ModelFileError) as e:
        reader(path)
    message = str(e.value)
    assert str(path) in message
    for word in words:
        assert word in message, message
    return message


def rknn(blob: bytes, trailer: dict | bytes, version: int = 6, header: int = 64) -> bytes:
    """An .rknn container per model-files.md §1.1 around ``blob`` and ``trailer``."""
    text = trailer if isinstance(trailer, bytes) else json.dumps(trailer).encode()
    head = b"RKNN\0\0\0\0" + struct.pack("<QQ", version, len(blob))
    return head + b"\0" * (header - len(head)) + blob + struct.pack("<Q", len(text)) + text


def parts(data: bytes) -> tuple[bytes, dict]:
    """(blob, trailing JSON) of a real sample."""
    n = struct.unpack_from("<Q", data, 16)[0]
    m = struct.unpack_from("<Q", data, 64 + n)[0]
    return data[64:64 + n], json.loads(data[72 + n:72 + n + m])


# --- .rknn: the real samples --------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SAMPLE_FACTS))
def test_real_samples(name):
    platforms, toolkit, compiler, inputs, outputs = SAMPLE_FACTS[name]
    model = read_rknn(SAMPLES / name)
    assert (model.format, model.encrypted, model.container_version) == ("rknn", False, 6)
    assert model.target_platform == platforms
    assert (model.toolkit_version, model.compiler_version) == (toolkit, compiler)
    assert (model.inputs, model.outputs) == (inputs, outputs)


def test_multiple_input_demo_rk3576_layout_and_json():
    data = DEMO_3576.read_bytes()
    assert data[:8] == b"RKNN\0\0\0\0" and struct.unpack_from("<QQ", data, 8) == (6, 21952)
    assert struct.unpack_from("<Q", data, 64 + 21952)[0] == 1348 and len(data) == 64 + 21952 + 8 + 1348
    assert read_rknn(DEMO_3576).to_json() == {
        "file": str(DEMO_3576), "format": "rknn", "container_version": 6, "target_platform": ["rk3576"],
        "toolkit_version": "1.6.2-source_code",
        "inputs": [{"name": "input.1", "shape": [1, 1, 128, 128]}, {"name": "input", "shape": [1, 3, 128, 128]}],
        "outputs": [{"name": "8", "shape": [1, 8, 128, 128]}], "encrypted": False,
        "compiler_version": "1.6.2b0 (6e4d1b714@2024-02-26T09:11:35)"}


def test_rk3566_rk3568_build_says_rk3566():
    assert read_rknn(SAMPLES / "tk2_multiple_input_demo_RK3566_RK3568.rknn").target_platform == ["rk3566"]


def test_only_header_trailer_and_blob_start_are_read(tmp_path, monkeypatch):
    """A 3 GiB model (sparse) is read with a few small reads: the blob is never read whole."""
    blob, meta = parts(DEMO_3576.read_bytes())
    text = json.dumps(meta).encode()
    path = tmp_path / "big.rknn"
    n = 3 << 30
    with open(path, "wb") as f:
        f.write(b"RKNN\0\0\0\0" + struct.pack("<QQ", 6, n) + b"\0" * 40 + blob)
        f.seek(64 + n)
        f.write(struct.pack("<Q", len(text)) + text)
    reads = []
    real_open = builtins.open

    class Counting:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def read(self, size=-1):
            assert size >= 0, "a read without a size"
            data = self.f.read(size)
            reads.append(len(data))
            return data

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(rknnfile, "open", lambda *a, **k: Counting(real_open(*a, **k)), raising=False)
    model = read_rknn(path)
    assert model.inputs == MULTI_IN and model.compiler_version == "1.6.2b0 (6e4d1b714@2024-02-26T09:11:35)"
    assert sum(reads) <= 64 + 8 + len(text) + 64 * 1024, reads


def test_version_1_header_is_24_bytes(tmp_path):
    blob, meta = parts(DEMO_3576.read_bytes())
    model = read_rknn(write(tmp_path, "old.rknn", rknn(blob, meta, version=1, header=24)))
    assert model.container_version == 1 and model.inputs == MULTI_IN and model.compiler_version.startswith("1.6.2b0")


def test_compiler_version_unknown_when_the_blob_holds_no_flatbuffer(tmp_path):
    _, meta = parts(DEMO_3576.read_bytes())
    filler = struct.pack("<I", 16) + b"RKNN" + struct.pack("<Q", 6) + bytes(range(256)) * 8
    model = read_rknn(write(tmp_path, "twin.rknn", rknn(filler, meta)))
    assert model.compiler_version is None and "compiler_version" not in model.to_json()
    assert model.inputs == MULTI_IN


# --- .rknn: refused or classified, with the cause named --------------------------------------------

def test_cut_short_names_blob_json_and_file_sizes(tmp_path):
    data = DEMO_3576.read_bytes()
    refused(write(tmp_path, "short.rknn", data[:-100]),
            "cut short", "blob 21952", "JSON 1348", "23372 bytes in all", f"has {len(data) - 100} bytes")
    refused(write(tmp_path, "stub.rknn", data[:1000]), "cut short", "blob 21952", "has 1000 bytes")
    refused(write(tmp_path, "header.rknn", data[:20]), "cut short", "24-byte")


def test_appended_bytes_are_named(tmp_path):
    refused(write(tmp_path, "long.rknn", DEMO_3576.read_bytes() + b"\n"), "23373 bytes", "1 more")


@pytest.mark.parametrize("start, words", [
    (b"\0" * 64, ["00 00 00 00", "not 'RKNN'"]),
    (b"\x7fELF\x02\x01\x01\0" + b"\0" * 56, ["7f 45 4c 46", "ELF binary"]),
    (b"GGUF\x03\0\0\0" + b"\0" * 56, ["47 47 55 46", "GGUF"]),
    (b"PK\x03\x04" + b"\0" * 60, ["zip archive"]),
    (b"\x08\x07\x12\x07pytorch" + b"\0" * 53, ["ONNX", "rknn-toolkit2"]),
    (b"RKFW" + b"\0" * 60, ["update.img"]),
    (b"<!DOCTYPE html>" + b" " * 49, ["HTML"]),
])
def test_wrong_magic_shows_the_bytes_and_what_it_looks_like(tmp_path, start, words):
    refused(write(tmp_path, "model.rknn", start + b"x" * 200), "not an .rknn model", *words)


def test_an_rkllm_given_as_rknn_is_named_by_its_footer(tmp_path):
    path = write(tmp_path, "qwen.rknn", b"\x93\x1c\xa7\x05" + b"\xaa" * 5000 + b"rkllm-toolkit version: 1.2.1\0")
    refused(path, "not an .rknn model", ".rkllm model", "1.2.1")


@pytest.mark.parametrize("start, words", [
    (b"\0\0\0\0RKNN" + b"\0" * 56, ["bare RKNN FlatBuffer"]),
    (b"VPMN" + b"\0" * 60, ["OpenVX NBG", "Toolkit1"]),
    (b"RKNN\nformat=1\n" + b"\0" * 50, ["bytes 4..7 are not zero"]),
])
def test_other_rknn_relatives_are_named(tmp_path, start, words):
    refused(write(tmp_path, "x.rknn", start), *words)


def test_unknown_container_version(tmp_path):
    blob, meta = parts(DEMO_3576.read_bytes())
    refused(write(tmp_path, "v.rknn", rknn(blob, meta, version=0x2006)), "unknown RKNN container version")


def test_encrypted_model(tmp_path):
    model = read_rknn(write(tmp_path, "enc.rknn", b"CYPTRKNN" + DEMO_3576.read_bytes()))
    assert model == RknnFile(path=str(tmp_path / "enc.rknn"), encrypted=True)
    assert model.to_json() == {"file": str(tmp_path / "enc.rknn"), "format": "rknn", "container_version": None,
                               "target_platform": [], "toolkit_version": None, "inputs": [], "outputs": [],
                               "encrypted": True}


def test_rknx_is_rknn3_with_fields_unknown(tmp_path):
    # an RKNX file: 0x50-byte header, then a FlatBuffer (netron e8b9e5e1); nothing of it is decoded
    data = b"RKNX" + struct.pack("<IQQ", 1, 6, 21952) + b"\0" * 0x3C + b"\1" * 99
    model = read_rknn(write(tmp_path, "new.rknn", data))
    assert (model.format, model.encrypted, model.container_version, model.target_platform) == ("rknn3", False, None, [])
    assert model.toolkit_version is None and model.inputs == model.outputs == []


def test_empty_missing_and_directory(tmp_path):
    refused(write(tmp_path, "empty.rknn", b""), "empty", "0 bytes")
    refused(tmp_path / "absent.rknn", "no such file")
    refused(tmp_path, "directory")


def test_unreadable_json(tmp_path):
    data = bytearray(DEMO_3576.read_bytes())
    data[64 + 21952 + 8] = ord("#")
    refused(write(tmp_path, "badjson.rknn", bytes(data)), "1348-byte JSON trailer", "unreadable", "damaged")
    blob, _ = parts(DEMO_3576.read_bytes())
    refused(write(tmp_path, "binjson.rknn", rknn(blob, b"\xff\xfe" * 10)), "JSON trailer", "unreadable")


def test_json_without_target_platform(tmp_path):
    blob, meta = parts(DEMO_3576.read_bytes())
    del meta["target_platform"]
    refused(write(tmp_path, "noplat.rknn", rknn(blob, meta)), "no target_platform", "norm_tensor")
    refused(write(tmp_path, "list.rknn", rknn(blob, b"[1, 2]")), "no target_platform")


def test_graph_pointing_nowhere(tmp_path):
    blob, meta = parts(DEMO_3576.read_bytes())
    meta["graph"][2]["right_tensor_id"] = 9
    refused(write(tmp_path, "graph.rknn", rknn(blob, meta)), "output 0", "norm_tensor 9", "does not list")


def test_graph_order_not_norm_tensor_order(tmp_path):
    blob, meta = parts(DEMO_3576.read_bytes())
    meta["graph"][0]["right_tensor_id"], meta["graph"][1]["right_tensor_id"] = 1, 0
    assert read_rknn(write(tmp_path, "swap.rknn", rknn(blob, meta))).inputs == MULTI_IN[::-1]


# --- .rkllm: the footer --------------------------------------------------------------------------

BODY = bytes((i * 37 + 11) % 256 for i in range(8192))  # stands for the obfuscated GGUF-like body


@pytest.mark.parametrize("footer, version", [
    (b"rkllm-toolkit version: 1.1.4\0", "1.1.4"),  # 29 bytes, as the public 1.1.4 file's last bytes
    (b"rkllm-toolkit version: 1.3.1", "1.3.1"),  # the 1.3.1 writer: no NUL
    (b"rkllm-toolkit version: 1.2.1b1\n", "1.2.1b1"),
    (b"", None),  # a third-party converter: no footer, not an error
    (b"rkllm-toolkit version: 1.2.3\0trailing junk", None),  # not at the very end
    (b"rkllm-toolkit version: unknown", None),
])
def test_rkllm_footer(tmp_path, footer, version):
    path = write(tmp_path, "m.rkllm", BODY + footer)
    model = read_rkllm(path)
    assert model == RkllmFile(path=str(path), size=len(BODY) + len(footer), toolkit_version=version)
    out = model.to_json()
    assert out == {"file": str(path), "format": "rkllm", "size": len(BODY) + len(footer),
                   "toolkit_version": version, "note": NOTE}
    for word in ("max_context_limit", "npu_core_num", "target_platform", "model_dtype", "init"):
        assert word in out["note"]


def test_rkllm_reads_only_head_and_tail(tmp_path):
    path = tmp_path / "big.rkllm"
    with open(path, "wb") as f:
        f.write(BODY[:64])
        f.seek(5 << 30)
        f.write(b"rkllm-toolkit version: 1.2.1\0")
    assert read_rkllm(path).toolkit_version == "1.2.1" and read_rkllm(path).size == (5 << 30) + 29


@pytest.mark.parametrize("start, words", [
    (b"RKNN\0\0\0\0", ["an .rknn model, not an .rkllm"]),
    (b"CYPTRKNN", ["an .rknn model, not an .rkllm"]),
    (b"GGUF\x03\0\0\0", ["a GGUF file", "convert it with rkllm-toolkit", "footer"]),
    (b"\x7fELF\x02\x01\x01\0", ["not an .rkllm model", "ELF"]),
    (b"PK\x03\x04\x14\0\0\0", ["not an .rkllm model", "zip"]),
    (b"version https://git-lfs.github.com/spec/v1\n", ["Git LFS pointer", "git lfs pull"]),
])
def test_rkllm_whose_start_says_something_else(tmp_path, start, words):
    refused(write(tmp_path, "m.rkllm", start + BODY), *words, reader=read_rkllm)


def test_rkllm_gguf_start_with_the_footer_is_an_rkllm(tmp_path):
    """Runtime 1.0.x read .rkllm with GGUF's loader: an early file may start GGUF; its footer says rkllm."""
    path = write(tmp_path, "old.rkllm", b"GGUF\x03\0\0\0" + BODY + b"rkllm-toolkit version: 1.0.1\0")
    assert read_rkllm(path).toolkit_version == "1.0.1"


def test_rkllm_empty_missing_and_too_small(tmp_path):
    refused(write(tmp_path, "e.rkllm", b""), "empty", reader=read_rkllm)
    refused(tmp_path / "absent.rkllm", "no such file", reader=read_rkllm)
    refused(write(tmp_path, "s.rkllm", b"x" * 100 + b"rkllm-toolkit version: 1.2.1\0"), "129 bytes", "too small",
            reader=read_rkllm)


# --- runtime libraries ----------------------------------------------------------------------------

RKNNRT = b"librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)\0"


@pytest.mark.parametrize("offset", [0, 1000, (1 << 20) - 60, (1 << 20) - 30, (1 << 20) - 600, (1 << 20) - 5,
                                    (1 << 20), (2 << 20) - 20])
def test_library_version_across_chunk_borders(tmp_path, offset):
    path = tmp_path / "librknnrt.so"
    path.write_bytes(b"\x7fELF" + b"\0" * offset + RKNNRT + b"\1" * 3000)
    assert versions.library_version(path) == versions.LibraryVersion("2.3.2", "429f97ae6b@2025-04-09T09:09:27")


def test_library_version_by_name(tmp_path):
    both = b"\x7fELF\0" + b"librknnrt version: 2.3.3 (c824afd6c@2025-08-25T09:55:02)\0rkllm-runtime version: 1.2.3\0"
    assert versions.library_version(write(tmp_path, "librkllmrt.so", both)) == versions.LibraryVersion("1.2.3")
    assert versions.library_version(write(tmp_path, "librknnrt.so", both)).version == "2.3.3"
    assert versions.library_version(write(tmp_path, "libfoo.so", both)) == versions.LibraryVersion("1.2.3")
    assert versions.library_version(write(tmp_path, "libbar.so", b"\x7fELF\0" + RKNNRT)).version == "2.3.2"
    # librkllmrt.so may carry no version string (rockchip.md §5): None, not a guess
    assert versions.library_version(write(tmp_path, "librkllmrt.so.1", b"\x7fELF\0rkllm-runtime version: %s\0")) is None
    assert versions.library_version(write(tmp_path, "librknnrt.so.2", b"")) is None
    with pytest.raises(OSError):
        versions.library_version(tmp_path / "librknnrt-absent.so")


def test_library_version_of_the_twin_stand_ins(tmp_path):
    from hil.twin.runtimelibs import runtime_library

    path = write(tmp_path, "librknnrt.so", runtime_library("librknnrt.so", "2.3.2"))
    assert versions.library_version(path).build == "429f97ae6b@2025-04-09T09:09:27"
    assert versions.library_version(write(tmp_path, "librkllmrt.so", runtime_library("librkllmrt.so", "1.2.1"))) \
        == versions.LibraryVersion("1.2.1")


# --- hil inspect ------------------------------------------------------------------------------------

def objects(text: str) -> list[dict]:
    """The JSON objects printed one after another (as ``jq`` reads them)."""
    decoder, out, at = json.JSONDecoder(), [], 0
    while at < len(text):
        while at < len(text) and text[at].isspace():
            at += 1
        if at < len(text):
            obj, at = decoder.raw_decode(text, at)
            out.append(obj)
    return out


def test_inspect_every_kind_by_content(tmp_path, capsys):
    model = write(tmp_path, "encoder.bin", DEMO_3576.read_bytes())  # the name says nothing
    llm = write(tmp_path, "llm.dat", BODY + b"rkllm-toolkit version: 1.2.1\0")
    third = write(tmp_path, "third-party.rkllm", BODY)
    lib = write(tmp_path, "librknnrt.so", b"\x7fELF\2\1\1\0" + RKNNRT)
    lib2 = write(tmp_path, "librkllmrt.so", b"\x7fELF\2\1\1\0no version here")
    enc = write(tmp_path, "enc.rknn", b"CYPTRKNN" + b"\0" * 100)
    assert inspect.main([str(p) for p in (model, llm, third, lib, lib2, enc)]) == 0
    out = objects(capsys.readouterr().out)
    assert [o["format"] for o in out] == ["rknn", "rkllm", "rkllm", "library", "library", "rknn"]
    assert out[0] == read_rknn(model).to_json()
    assert (out[1]["toolkit_version"], out[2]["toolkit_version"]) == ("1.2.1", None)
    assert out[3] == {"file": str(lib), "format": "library", "library": "librknnrt", "version": "2.3.2",
                      "build": "429f97ae6b@2025-04-09T09:09:27"}
    assert out[4] == {"file": str(lib2), "format": "library", "library": "librkllmrt", "version": None}
    assert out[5]["encrypted"] is True


def test_inspect_bad_file_exits_1_and_the_good_ones_still_print(tmp_path, capsys):
    bad = write(tmp_path, "broken.rknn", DEMO_3576.read_bytes()[:5000])
    gguf = write(tmp_path, "model.rkllm", b"GGUF\x03\0\0\0" + BODY)
    notlib = write(tmp_path, "librknnrt.so", b"#!/bin/sh\n")
    other = write(tmp_path, "notes.txt", b"hello")
    files = [str(bad), str(DEMO_3576), str(gguf), str(notlib), str(tmp_path / "absent.rknn"), str(other)]
    assert inspect.main(files) == 1
    out = objects(capsys.readouterr().out)
    assert [o["file"] for o in out] == files
    assert out[1] == read_rknn(DEMO_3576).to_json()
    errors = {o["file"]: o["error"] for o in out if "error" in o}
    assert set(errors) == set(files) - {str(DEMO_3576)}
    assert "cut short" in errors[str(bad)] and "blob 21952" in errors[str(bad)]
    assert "GGUF" in errors[str(gguf)]
    assert "not an ELF shared object" in errors[str(notlib)]
    assert "No such file" in errors[str(tmp_path / "absent.rknn")]
    assert "not a file 'hil inspect' reads" in errors[str(other)]
    for o in out:
        if "error" in o:
            assert set(o) == {"file", "error"} and o["file"] in o["error"]


def test_hil_inspect_console_script(tmp_path):
    """Once through the installed ``hil`` (its start-up imports every command, so only once)."""
    hil = Path(sys.executable).parent / "hil"
    assert hil.exists(), f"the console script is not installed in {hil.parent}"
    bad = write(tmp_path, "short.rknn", DEMO_3576.read_bytes()[:-1])
    done = subprocess.run([str(hil), "inspect", str(DEMO_3576), str(bad)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stderr
    out = objects(done.stdout)
    assert out[0] == read_rknn(DEMO_3576).to_json()
    assert out[1]["file"] == str(bad) and "cut short" in out[1]["error"]
