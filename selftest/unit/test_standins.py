"""The RKLLM demo stand-ins, run under the host's busybox (the guest's shell) in a fake root.

``TWIN_ROOT`` points the stand-in's board paths (debugfs, /proc/cmdline, /run/twin/fault,
/dev/kmsg, /usr/libexec/twin/npu, /usr/lib) at a temporary directory, and
``TWIN_TIMESCALE=0.01`` shortens the waits while the printed figures stay at board values.
"""

from __future__ import annotations

import gzip
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import attr
import pytest

from hil.kit import pictures
from hil.twin import models, standins
from hil.twin.cpio import CpioWriter
from hil.twin.runtimelibs import runtime_library

BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (the guest's shell) on the host")

VERSIONS = ["1.1.4", "1.2.0", "1.2.1", "1.2.2", "1.2.3", "1.3.0"]
TIMESCALE = "0.01"
M2B = "qwen2-vl-2b-instruct_w4a16_rk3576"
M3B = "qwen2.5-vl-3b-w4a16_level1_rk3576"
M2B_TK114 = "qwen2-vl-2b-instruct_w4a16_rk3576-tk114"  # converted by toolkit 1.1.4, for the 1.1.x runtime
M3588 = "qwen2-vl-2b-instruct_w8a8_rk3588"
CORRUPT = "qwen2-vl-2b-instruct_w4a16_rk3576-corrupt"

SEP = "-" * 86
HEADER = " %-12s  %-15s  %-8s  %-23s  %-23s" % (
    "Stage", "Total Time (ms)", "Tokens", "Time per Token (ms)", "Tokens per Second")
ROW = re.compile(r"^(?:I rkllm: )? (Prefill|Generate)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s*$")
MENU_TOP = "\n**********************可输入以下问题对应序号获取回答/或自定义输入********************\n\n"
MENU_BOTTOM = "\n*************************************************************************\n\n"
PUBLISHED = {  # rknn-llm multimodal table, RK3576 w4a16 (v1.2.2 -> v1.3.0)
    M2B: {"encoder_ms": 3550, "prefill_ms_per_token": 1234.9 / 196, "decode_tps": 14.57},
    M3B: {"encoder_ms": 2870, "prefill_ms_per_token": 2130 / 196, "decode_tps": 7.87},
}


@attr.s(frozen=True)
class Kit:
    root = attr.ib()
    bundles = attr.ib()
    models = attr.ib()

    def llm(self, name):
        return self.models / models.files_of(name)[0]

    def vision(self, name):
        return self.models / models.files_of(name)[1]


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("standins")
    bundles = {v: standins.write_bundle(root / f"sdk-{v}", v) for v in VERSIONS}
    mdir = root / "models"
    models.write_models(mdir, [M2B, M3B, M3588])
    models.write_corrupt_model(mdir, M2B, name=CORRUPT)
    models.write_model(mdir, models.MODELS[M2B].evolve(toolkit_version="1.1.4"), name=M2B_TK114)
    return Kit(root, bundles, mdir)


@attr.s
class Board:
    """A fake board root (what TWIN_ROOT points at)."""

    root = attr.ib(converter=Path)

    def write(self, rel, text, mode=0o644):
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        return path

    def driver(self, version):
        self.write("sys/kernel/debug/rknpu/version", f"RKNPU driver: v{version}\n")

    def fault(self, name, value="1"):
        self.write(f"run/twin/fault/{name}", f"{value}\n")

    def npu(self, freq_hz=950000000):
        """A fake /usr/libexec/twin/npu that logs its calls."""
        log = self.root / "npu.log"
        self.write(
            "usr/libexec/twin/npu",
            f'#!/bin/sh\necho "$*" >> {log}\n[ "$1" = freq ] && echo {freq_hz}\nexit 0\n',
            0o755,
        )
        return log

    @property
    def kmsg(self):
        return (self.root / "dev/kmsg").read_text()


@pytest.fixture
def board(tmp_path):
    b = Board(tmp_path / "root")
    b.driver("0.9.8")
    b.write("proc/cmdline", "console=ttyAMA0,115200 rdinit=/init panic=0 loglevel=7\n")
    b.write("etc/twin/image.env", "TWIN_IMAGE=test\nTWIN_RKNPU_DRIVER=0.9.8\n")
    b.write("dev/kmsg", "")
    (b.root / "run/twin/fault").mkdir(parents=True)
    return b


@attr.s(frozen=True)
class Result:
    rc = attr.ib()  # as a shell reports it: 128 + signal for a process killed by a signal
    out = attr.ib()
    err = attr.ib()
    pid = attr.ib()
    seconds = attr.ib()

    @property
    def lines(self):
        return self.out.split("\n")


def run(kit, board, version, binary, args, stdin="exit\n", loglevel=1, env=None, cwd=None, lib=None):
    bundle = kit.bundles[version]
    if cwd is None:
        cwd, prog = bundle, f"./{binary}"
    else:
        prog = str(bundle / binary)
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TWIN_ROOT": str(board.root),
        "TWIN_TIMESCALE": TIMESCALE,
        "LD_LIBRARY_PATH": str(lib or bundle / "lib"),
        "RKLLM_LOG_LEVEL": str(loglevel),
        "TMPDIR": str(board.root.parent),
    }
    environ.update(env or {})
    environ = {k: v for k, v in environ.items() if v is not None}
    start = time.monotonic()
    p = subprocess.Popen([BUSYBOX, "sh", prog, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=cwd, env=environ)
    out, err = p.communicate(stdin.encode(), timeout=60)
    rc = p.returncode if p.returncode >= 0 else 128 - p.returncode
    return Result(rc, out.decode(), err.decode(), p.pid, time.monotonic() - start)


def demo_args(kit, version, model=M2B, picture="house.png", max_new=128, max_ctx=512, core=2, extra=()):
    args = [pictures.PICTURES_DIR / picture, kit.vision(model), kit.llm(model), max_new, max_ctx]
    if version >= "1.2.1":
        args.append(core)
    if version >= "1.3.0":
        args.append("rk3576")
    return args + list(extra)


def picture_sha(name):
    return next(p["sha256"] for p in pictures.load() if p["file"] == name)


def expected_answer(kit, model, prompt, version, picture=None):
    return models.answer(kit.llm(model).read_bytes(), prompt, picture_sha(picture) if picture else None, version)


def perf_rows(out):
    """(stage, total ms, tokens, ms/token, tokens/s) for every Prefill/Generate row, in order."""
    rows = []
    for line in out.split("\n"):
        m = ROW.match(line)
        if m:
            rows.append((m[1], float(m[2]), int(m[3]), float(m[4]), float(m[5])))
    return rows


def decode_tps(out):
    return [r[4] for r in perf_rows(out) if r[0] == "Generate"]


def figure(out, label):
    m = re.search(rf"^main: {label} (?:in|took|cost) +([\d.]+) ms$", out, re.M)
    assert m, f"no '{label}' line in:\n{out}"
    return float(m[1])


# --- versions, log lines and tables ----------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_init_lines_of_each_runtime(kit, board, version):
    model = M2B_TK114 if version < "1.2" else M2B
    r = run(kit, board, version, "demo", demo_args(kit, version, model))
    assert r.rc == 0, r.err
    version_line = f"I rkllm: rkllm-runtime version: {version}, rknpu driver version: 0.9.8, platform: RK3576"
    if version < "1.2":
        assert r.lines[:4] == [version_line, "", "rkllm init success", r.lines[3]]
        assert "rkllm-toolkit" not in r.out
    else:
        toolkit = "1.2.1"
        assert r.lines[:7] == [
            version_line,
            f"I rkllm: loading rkllm model from {kit.llm(model)}",
            f"I rkllm: rkllm-toolkit version: {toolkit}, max_context_limit: 4096, npu_core_num: 2, "
            "target_platform: RK3576, model_dtype: W4A16",
            "I rkllm: Enabled cpus: [4, 5, 6, 7]",
            "I rkllm: Enabled cpus num: 4",
            "I rkllm: Using mrope",
            "rkllm init success",
        ]
    assert re.fullmatch(r"main: LLM Model loaded in +\d+\.\d\d ms", r.lines[r.lines.index("rkllm init success") + 1])
    template = "I rkllm: reset chat template:" in r.out
    assert template == (version in ("1.2.0", "1.2.1"))
    if template:
        assert "I rkllm: system_prompt: <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n\n" in r.out
        assert "I rkllm: prompt_postfix: <|im_end|>\\n<|im_start|>assistant\\n\n" in r.out
    assert ("main: ImgEnc Model inference took" in r.out) == (version >= "1.2.2")
    assert ("===the core num is 2===" in r.out) == (version >= "1.2.1")
    assert r.out.endswith("\nuser: ")


@pytest.mark.parametrize("version", VERSIONS)
def test_performance_table_of_each_runtime(kit, board, version):
    model = M2B_TK114 if version < "1.2" else M2B
    first = "What is in the image?" if version < "1.2" else "0"
    r = run(kit, board, version, "demo", demo_args(kit, version, model), stdin=f"{first}\n{first}\nexit\n")
    assert r.rc == 0, r.err
    pre = "" if version < "1.2" else "I rkllm: "
    lines = [line for line in r.lines if line.startswith(pre + " ") or line == pre + SEP]
    assert lines, r.out
    assert all(line.removeprefix(pre) == SEP for line in lines if set(line.removeprefix(pre)) == {"-"})
    assert lines.count(pre + HEADER) == 2, "one table per rkllm_run, header padded to its widths"
    for stage, total, tokens, per, tps in perf_rows(r.out):
        row = " %-12s  %-15s  %-8s  %-23s  %-23s" % (stage, f"{total:.2f}", tokens, f"{per:.2f}", f"{tps:.2f}")
        assert pre + row in r.lines
        assert per == pytest.approx(total / tokens, abs=0.011)
        assert tps == pytest.approx(1000 * tokens / total, abs=0.011)
    answer = expected_answer(kit, model, models.EN_IMAGE_PROMPT, version, "house.png")
    new_tokens = len(models.tokenize(answer)) + 1  # the answer and its end-of-sequence token
    prefill, generate = perf_rows(r.out)[:2]
    assert prefill[2] == 223
    assert generate[2] == new_tokens - 1
    init = [line for line in r.lines if "Model init time (ms)" in line]
    init_row = [line for line in r.lines if line.startswith(pre + " Init ")]
    if version >= "1.2.1":
        assert len(init) == 1 and not init_row
        assert re.fullmatch(r"I rkllm:  Model init time \(ms\)  [\d.]+ +", init[0])
        assert len(init[0]) == len("I rkllm: ") + 98
        i = r.lines.index(init[0])
        assert r.lines[i - 1] == r.lines[i + 1] == pre + SEP
        second = [i for i, line in enumerate(r.lines) if line == pre + HEADER][1]
        assert r.lines[second - 1].startswith("robot: "), "later tables start at the Stage header"
    elif version == "1.2.0":
        assert not init and len(init_row) == 1
        assert re.fullmatch(r"I rkllm:  Init {10}[\d.]+ +/ {9}/ {24}/ {22}", init_row[0])
    else:
        assert not init and not init_row
    memory = [r.lines[i + 1] for i, line in enumerate(r.lines) if "Memory Usage" in line]
    units = [line for line in r.lines if "Memory Usage" in line]
    if version < "1.2":
        assert not units
    else:
        label = {"1.2.0": " Memory Usage (GB)", "1.3.0": " Peak Memory Usage (MB)"}.get(version, " Peak Memory Usage (GB)")
        assert units == [pre + label] * 2
        assert len(set(memory)) == 1, "a peak does not go down between runs"
        assert re.fullmatch(r"I rkllm:  [\d.]+ *", memory[0]) and len(memory[0]) == len(pre) + 13
        value = float(memory[0].removeprefix(pre))
        expected_mb = 1792 + 1436.52  # 2B w4a16 LLM (1.75 GB) + its vision encoder in the same process
        assert value == pytest.approx(expected_mb if version == "1.3.0" else expected_mb / 1024, rel=0.01)


def test_no_table_without_log_level(kit, board):
    r = run(kit, board, "1.2.1", "demo", demo_args(kit, "1.2.1"), stdin="0\nexit\n", loglevel=0)
    assert r.rc == 0
    assert SEP not in r.out and "Prefill" not in r.out
    assert "robot: " in r.out


# --- answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_picture_answers_are_the_models(kit, board, version):
    model = M2B_TK114 if version < "1.2" else M2B
    if version < "1.2":  # no menu: every input goes with the image
        stdin, prompts = "What is in the image?\nexit\n", [models.EN_IMAGE_PROMPT]
    else:
        stdin, prompts = "0\n1\nexit\n", [models.EN_IMAGE_PROMPT, models.ZH_IMAGE_PROMPT]
    r = run(kit, board, version, "demo", demo_args(kit, version, model, picture="cat.png"), stdin=stdin)
    assert r.rc == 0, r.err
    for prompt in prompts:
        answer = expected_answer(kit, model, prompt, version, "cat.png")
        echo = "" if version < "1.2" else prompt + "\n"
        assert f"user: {echo}robot: {answer}\n" in r.out
    assert "cat" in r.out.split("robot: ")[1]


def test_text_answers_from_llm(kit, board):
    prompts = [p for p in models.TEXT_ANSWERS if not p.startswith("把这句话翻译成中文")]
    stdin = "".join(p + "\n" for p in prompts) + "exit\n"
    r = run(kit, board, "1.2.1", "llm", [kit.llm(M2B), 512, 1024], stdin=stdin, loglevel=0)
    assert r.rc == 0, r.err
    for prompt in prompts:
        assert f"robot: {expected_answer(kit, M2B, prompt, '1.2.1')}\n" in r.out


def test_unknown_prompt_and_picture(kit, board, tmp_path):
    r = run(kit, board, "1.2.3", "demo", demo_args(kit, "1.2.3", picture="cat.png"),
            stdin="Tell me a joke\n<image>Describe the picture.\nexit\n", loglevel=0)
    assert f"robot: {models.generic_answer('Tell me a joke')}\n" in r.out
    cat = expected_answer(kit, M2B, "<image>Describe the picture.", "1.2.3", "cat.png")
    assert f"robot: {cat}\n" in r.out
    other = tmp_path / "unknown.png"
    other.write_bytes((pictures.PICTURES_DIR / "cat.png").read_bytes() + b"trailing bytes: another file")
    args = demo_args(kit, "1.2.3")
    args[0] = other
    r = run(kit, board, "1.2.3", "demo", args, stdin="0\nexit\n", loglevel=0)
    assert f"robot: {models.UNKNOWN_PICTURE}\n" in r.out


def test_answers_are_deterministic_but_timings_are_not(kit, board):
    runs = [run(kit, board, "1.2.1", "demo", demo_args(kit, "1.2.1"), stdin="0\nexit\n") for _ in range(3)]
    answers = {r.out.split("robot: ")[1].split("\n")[0] for r in runs}
    assert len(answers) == 1
    prefills = {perf_rows(r.out)[0][1] for r in runs}
    assert len(prefills) > 1, "run-to-run noise"


def test_custom_image_tags_hide_the_image(kit, board):
    tags = ["<image_start>", "<image_end>", "<image>"]
    r = run(kit, board, "1.2.3", "demo", demo_args(kit, "1.2.3", extra=tags), stdin="0\nexit\n", loglevel=0)
    assert "[Warning]" not in r.err
    assert f"robot: {models.NO_IMAGE_SEEN}\n" in r.out


# --- figures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [M2B, M3B])
def test_figures_match_published_rk3576_numbers(kit, board, model):
    log = board.npu()
    r = run(kit, board, "1.2.3", "demo", demo_args(kit, "1.2.3", model), stdin="0\n0\nexit\n")
    assert r.rc == 0, r.err
    published = PUBLISHED[model]
    assert figure(r.out, "ImgEnc Model inference") == pytest.approx(published["encoder_ms"], rel=0.05)
    for stage, total, tokens, per, tps in perf_rows(r.out):
        if stage == "Prefill":
            assert per == pytest.approx(published["prefill_ms_per_token"], rel=0.05)
        else:
            assert tps == pytest.approx(published["decode_tps"], rel=0.05)
    calls = log.read_text().split("\n")
    assert "busy 78 76" in calls and calls[-2] == "idle", "debugfs load follows the run"


def test_imgenc_encoder_time_and_output(kit, board, tmp_path):
    r = run(kit, board, "1.2.1", "imgenc", [kit.vision(M2B), pictures.PICTURES_DIR / "red-circle.png", 2],
            cwd=tmp_path)
    assert r.rc == 0, r.err
    assert r.lines[:8] == [
        "===the core num is 2===",
        "model input num: 1, output num: 1",
        "input tensors:",
        "  index=0, name=pixel, n_dims=4, dims=[1, 392, 392, 3], n_elems=460992, size=921984, fmt=NHWC, "
        "type=FP16, qnt_type=AFFINE, zp=0, scale=1.000000",
        "output tensors:",
        "  index=0, name=54127, n_dims=2, dims=[196, 1536, 0, 0], n_elems=301056, size=602112, fmt=UNDEFINED, "
        "type=FP16, qnt_type=AFFINE, zp=0, scale=1.000000",
        "model input height=392, width=392, channel=3",
        r.lines[7],
    ]
    assert re.fullmatch(r"main: Model loaded in +[\d.]+ ms", r.lines[7])
    assert figure(r.out, "Encoder the image") == pytest.approx(3550, rel=0.05)
    assert (tmp_path / "img_vec.bin").stat().st_size == 196 * 1536 * 4


def test_imgenc_1_2_3_sizes_the_output_from_the_model(kit, board, tmp_path):
    r = run(kit, board, "1.2.3", "imgenc", [kit.vision(M3B), pictures.PICTURES_DIR / "cat.png", 2], cwd=tmp_path)
    assert r.rc == 0, r.err
    assert "dims=[196, 2048, 0, 0], n_elems=401408, size=802816" in r.out
    assert (tmp_path / "img_vec.bin").stat().st_size == 196 * 2048 * 4


def test_npu_frequency_scales_throughput(kit, board):
    board.npu(475000000)
    r = run(kit, board, "1.2.3", "demo", demo_args(kit, "1.2.3"), stdin="0\nexit\n")
    assert figure(r.out, "ImgEnc Model inference") == pytest.approx(2 * 3550, rel=0.05)
    assert decode_tps(r.out)[0] == pytest.approx(14.57 / 2, rel=0.05)


def test_decode_slow_fault(kit, board):
    stdin = "3\n" * 5 + "exit\n"  # the long Chinese translation: ~200 tokens per turn
    args = [kit.llm(M2B), 512, 1024]
    base = decode_tps(run(kit, board, "1.2.1", "llm", args, stdin=stdin).out)
    board.fault("decode-slow", "5")
    slow = decode_tps(run(kit, board, "1.2.1", "llm", args, stdin=stdin).out)
    assert len(base) == len(slow) == 5
    ratio = (sum(slow) / len(slow)) / (sum(base) / len(base))
    assert 0.92 < ratio < 0.98


class Dialogue:
    """A stand-in running interactively: ``turn`` sends a line and reads up to the next
    ``user: `` prompt; ``rss_kib`` is the process's VmRSS now (from /proc/<pid>/status)."""

    PROMPT = "\nuser: "

    def __init__(self, kit, board, version, binary, args, loglevel=1):
        bundle = kit.bundles[version]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TWIN_ROOT": str(board.root),
            "TWIN_TIMESCALE": TIMESCALE,
            "LD_LIBRARY_PATH": str(bundle / "lib"),
            "RKLLM_LOG_LEVEL": str(loglevel),
            "TMPDIR": str(board.root.parent),
        }
        self.p = subprocess.Popen([BUSYBOX, "sh", f"./{binary}", *map(str, args)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=bundle, env=env)
        self.buf = b""
        self.read_to_prompt()

    def read_to_prompt(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while not self.buf.endswith(self.PROMPT.encode()):
            left = deadline - time.monotonic()
            assert left > 0, f"no prompt within {timeout} s:\n{self.buf.decode(errors='replace')}"
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                data = os.read(fd, 65536)
                assert data, f"the stand-in ended:\n{self.buf.decode(errors='replace')}"
                self.buf += data
        out, self.buf = self.buf.decode(), b""
        return out

    def turn(self, line):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()
        return self.read_to_prompt()

    def rss_kib(self):
        status = Path(f"/proc/{self.p.pid}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+) kB$", status, re.M)[1])

    def close(self):
        try:
            self.p.stdin.write(b"exit\n")
            self.p.stdin.close()
        except OSError:
            pass
        try:
            return self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def peak_memory_mb(out):
    lines = out.split("\n")
    return [float(lines[i + 1].removeprefix("I rkllm: ")) for i, line in enumerate(lines)
            if line == "I rkllm:  Peak Memory Usage (MB)"]


@pytest.mark.parametrize("leak_mib", [None, "2"])
def test_demo_leak_grows_the_process_per_turn(kit, board, leak_mib):
    """demo-leak MIB: the process's own VmRSS and the runtime's peak memory grow by MIB MiB per
    answered turn; without the fault both stay flat."""
    if leak_mib:
        board.fault("demo-leak", leak_mib)
    d = Dialogue(kit, board, "1.3.0", "demo", demo_args(kit, "1.3.0", max_new=32))
    try:
        rss, peaks = [d.rss_kib()], []
        for _ in range(6):
            out = d.turn("0")
            assert "robot: " in out
            rss.append(d.rss_kib())  # between turns: the stand-in waits at its prompt
            peaks += peak_memory_mb(out)
    finally:
        assert d.close() == 0
    growth = [b - a for a, b in zip(rss[1:], rss[2:])]  # from the end of the first turn on
    peak_steps = [round(b - a, 2) for a, b in zip(peaks, peaks[1:])]
    assert len(peaks) == 6
    if leak_mib:
        assert all(1800 < g < 2600 for g in growth), f"VmRSS steps (KiB): {growth}"
        assert sum(growth) / len(growth) == pytest.approx(2048, rel=0.1), f"VmRSS steps (KiB): {growth}"
        assert rss[1] - rss[0] > 1800, "the first answered turn leaks too"
        assert peak_steps == [2.0] * 5
    else:
        assert max(rss[1:]) - min(rss[1:]) < 512, f"VmRSS (KiB): {rss}"
        assert peak_steps == [0.0] * 5


def test_demo_leak_is_read_at_every_turn(kit, board):
    """Switched on and off while the dialogue runs: only the turns it was on for leak, by the
    value set then."""
    d = Dialogue(kit, board, "1.3.0", "demo", demo_args(kit, "1.3.0", max_new=32))
    fault = board.root / "run/twin/fault/demo-leak"
    try:
        d.turn("0")
        steps, peaks = [], []
        for value in (None, "3", "1", None):
            if value:
                board.fault("demo-leak", value)
            else:
                fault.unlink(missing_ok=True)
            before = d.rss_kib()
            peaks += peak_memory_mb(d.turn("0"))
            steps.append(d.rss_kib() - before)
    finally:
        assert d.close() == 0
    assert steps[0] < 256 and steps[3] < 256, steps
    assert 3 * 1024 * 0.9 < steps[1] < 3 * 1024 * 1.25, steps
    assert 1024 * 0.8 < steps[2] < 1024 * 1.4, steps
    assert [round(b - a, 2) for a, b in zip(peaks, peaks[1:])] == [3.0, 1.0, 0.0]


def test_demo_leak_only_for_answered_turns(kit, board):
    """A turn that fails (prompt longer than the context) answers nothing and keeps nothing."""
    board.fault("demo-leak", "4")
    d = Dialogue(kit, board, "1.3.0", "demo", demo_args(kit, "1.3.0", max_new=32, max_ctx=100))
    try:
        assert "robot: " in d.turn("hello")  # a text prompt fits
        before = d.rss_kib()
        out = d.turn("0")  # the picture's 196 tokens do not
        assert "prompt gather than max context" in out
        after = d.rss_kib()
    finally:
        assert d.close() == 0
    assert after - before < 256


def test_time_scale_from_the_kernel_command_line(kit, board):
    board.write("proc/cmdline", "console=ttyAMA0,115200 twin.timescale=0.01 panic=0\n")
    r = run(kit, board, "1.2.3", "demo", demo_args(kit, "1.2.3"), stdin="0\nexit\n",
            env={"TWIN_TIMESCALE": None})
    assert r.rc == 0
    board_ms = figure(r.out, "LLM Model loaded") + figure(r.out, "ImgEnc Model loaded")
    board_ms += figure(r.out, "ImgEnc Model inference") + sum(row[1] for row in perf_rows(r.out))
    assert board_ms > 10000
    assert r.seconds < board_ms / 1000 * 0.2, "waits are scaled"
    assert r.seconds > board_ms / 1000 * 0.01 * 0.5, "waits happen"


# --- failures ----------------------------------------------------------------------------------


def test_old_driver_warns_then_generation_fails(kit, board):
    board.driver("0.9.6")
    r = run(kit, board, "1.2.1", "demo", demo_args(kit, "1.2.1"), stdin="0\nexit\n")
    assert r.rc == 0
    assert r.lines[0] == "W rkllm: Warning: Your rknpu driver version is too low, please upgrade to 0.9.7"
    assert r.lines[1].startswith("I rkllm: rkllm-runtime version: 1.2.1, rknpu driver version: 0.9.6,")
    assert "rkllm init success" in r.lines
    turn = r.out.split("robot: ")[1]
    assert turn.startswith("E rkllm: matmul(w8a8) run failed\n")
    assert turn.count("E rkllm: matmul(w8a8) run failed\n") == 28
    assert "\\run error\n" in turn
    assert "Prefill" not in turn


def test_old_driver_1_1_form(kit, board):
    board.driver("0.9.6")
    r = run(kit, board, "1.1.4", "llm", [kit.llm(M2B_TK114), 128, 512])
    assert r.lines[:5] == [
        "rkllm init start",
        "W rkllm: Warning: Your rknpu driver version is too low, please upgrade to 0.9.7.",
        "",
        "I rkllm: rkllm-runtime version: 1.1.4, rknpu driver version: 0.9.6, platform: RK3576",
        "",
    ]


def test_driver_version_falls_back_to_the_image(kit, board):
    (board.root / "sys/kernel/debug/rknpu/version").unlink()
    board.write("etc/twin/image.env", 'TWIN_IMAGE=x\nTWIN_RKNPU_DRIVER="0.9.7"\n')
    r = run(kit, board, "1.2.1", "llm", [kit.llm(M2B), 128, 512])
    assert "rknpu driver version: 0.9.7, platform: RK3576" in r.out
    assert "Warning" not in r.out


def test_corrupt_model(kit, board):
    r = run(kit, board, "1.2.1", "llm", [kit.llm(CORRUPT), 128, 512])
    assert r.rc == 255
    assert r.lines[2:5] == [f"I rkllm: loading rkllm model from {kit.llm(CORRUPT)}", "E rkllm: invalid rkllm model!",
                            "rkllm init failed"]


def test_corrupt_model_on_1_1_loads_and_talks_garbage(kit, board):
    r = run(kit, board, "1.1.4", "llm", [kit.llm(CORRUPT), 16, 512], stdin="What is the capital of France?\nexit\n")
    assert r.rc == 0
    assert re.search(r"^E RKNN: \[\d\d:\d\d:\d\d\.\d{3}\] invalid rknn llm model magic$", r.out, re.M)
    assert re.search(r"^E RKNN: \[[\d:.]+\] load model file error!$", r.out, re.M)
    assert "rkllm init success" in r.lines
    assert "Paris" not in r.out.split("robot: ")[1]


@pytest.mark.parametrize(
    "version, model, expected",
    [
        ("1.1.4", M2B, [": invalid magic characters 'RKLL'", f": error: failed to load model '{{llm}}'"]),
        ("1.2.1", M2B_TK114, ["E rkllm: invalid rkllm model!"]),
    ],
)
def test_model_from_another_toolkit(kit, board, version, model, expected):
    r = run(kit, board, version, "llm", [kit.llm(model), 128, 512])
    assert r.rc == 255
    for line in expected:
        assert line.format(llm=kit.llm(model)) in r.lines
    assert r.lines[-2:] == ["rkllm init failed", ""]


def test_model_for_another_soc(kit, board):
    r = run(kit, board, "1.2.1", "demo", demo_args(kit, "1.2.1", M3588))
    assert r.rc == 255
    assert ("I rkllm: rkllm-toolkit version: 1.2.1, max_context_limit: 4096, npu_core_num: 3, "
            "target_platform: RK3588, model_dtype: W8A8") in r.lines
    error = r.lines[r.lines.index("rkllm init failed") - 1]
    assert error.startswith("E rkllm: ") and "RK3588" in error
    assert "main: LLM Model loaded" not in r.out


def test_vision_encoder_for_another_soc(kit, board, tmp_path):
    r = run(kit, board, "1.2.1", "imgenc", [kit.vision(M3588), pictures.PICTURES_DIR / "cat.png", 2], cwd=tmp_path)
    assert r.rc == 255
    assert r.lines[-3:] == ["rknn_init fail! ret=-1", f"init_imgenc fail! ret=-1 model_path={kit.vision(M3588)}", ""]


def test_vision_encoder_with_bad_magic(kit, board, tmp_path):
    r = run(kit, board, "1.2.1", "imgenc", [kit.llm(M2B), pictures.PICTURES_DIR / "cat.png", 2], cwd=tmp_path)
    assert r.rc == 255
    assert [re.sub(r"\[[\d:.]+\]", "[T]", line) for line in r.lines[:4]] == [
        "E RKNN: [T] parseRKNN: invalid RKNN_MAGIC!",
        "E RKNN: [T] parseRKNN from buffer: Invalid RKNN format!",
        "E RKNN: [T] rknn_init, load model failed!",
        "rknn_init fail! ret=-1",
    ]


def test_max_context_above_the_model_limit(kit, board):
    r = run(kit, board, "1.2.1", "demo", demo_args(kit, "1.2.1", max_new=2048, max_ctx=16384))
    assert r.rc == 255
    assert r.lines[-3:] == [
        "E rkllm: max_context[16384] must be less than the model's max_context_limit[4096]",
        "rkllm init failed",
        "",
    ]


def test_prompt_longer_than_context(kit, board):
    r = run(kit, board, "1.2.1", "demo", demo_args(kit, "1.2.1", max_ctx=200), stdin="0\nWhat is the capital of France?\nexit\n")
    assert r.rc == 0
    assert "robot: E rkllm: prompt gather than max context (prompt: 223 tokens, max context: 200)\n\\run error\n" in r.out
    assert "robot: The capital of France is Paris.\n" in r.out, "text prompts still fit"


def test_core_num_3_on_a_two_core_npu(kit, board):
    r = run(kit, board, "1.2.3", "demo", demo_args(kit, "1.2.3", core=3), stdin="0\nexit\n")
    assert r.rc == 0
    i = r.lines.index("===the core num is 3===")
    assert re.fullmatch(r"E RKNN: \[\d\d:\d\d:\d\d\.\d{3}\] rknn_set_core_mask: unavailable core mask found for "
                        r"current platform! max core mask = 3", r.lines[i + 1])
    assert "robot: " + expected_answer(kit, M2B, models.EN_IMAGE_PROMPT, "1.2.3", "house.png") in r.out
    assert figure(r.out, "ImgEnc Model inference") > 1.5 * 3550, "the encoder fell back to one core"


@pytest.mark.parametrize("version, binary", [("1.2.0", "demo"), ("1.2.1", "demo"), ("1.2.1", "imgenc")])
def test_hard_coded_embed_size_segfaults_on_the_3b_encoder(kit, board, tmp_path, version, binary):
    if binary == "demo":
        r = run(kit, board, version, "demo", demo_args(kit, version, M3B), stdin="0\nexit\n")
        last = "main: ImgEnc Model loaded in"
    else:
        r = run(kit, board, version, "imgenc", [kit.vision(M3B), pictures.PICTURES_DIR / "cat.png", 2], cwd=tmp_path)
        last = "main: Model loaded in"
    assert r.rc == 139
    assert r.lines[-2].startswith(last) and r.lines[-1] == ""
    assert not (tmp_path / "img_vec.bin").exists()


def test_oom_killer(kit, board):
    board.fault("oom-kill")
    r = run(kit, board, "1.2.1", "demo", demo_args(kit, "1.2.1"), stdin="0\nexit\n")
    assert r.rc == 137
    assert "rkllm init success" not in r.out
    assert re.search(rf"^<3>Out of memory: Killed process {r.pid} \(demo\) total-vm:\d+kB, anon-rss:\d+kB, ",
                     board.kmsg, re.M)


def test_missing_picture_aborts_in_opencv(kit, board):
    args = demo_args(kit, "1.2.3")
    args[0] = "/nonexistent.jpg"
    r = run(kit, board, "1.2.3", "demo", args)
    assert r.rc == 134
    assert "terminate called after throwing an instance of 'cv::Exception'" in r.err


def test_missing_runtime_library(kit, board, tmp_path):
    r = run(kit, board, "1.2.1", "demo", demo_args(kit, "1.2.1"), lib=tmp_path)
    assert r.rc == 127
    assert r.err == ("./demo: error while loading shared libraries: librkllmrt.so: cannot open shared object "
                     "file: No such file or directory\n")


def test_runtime_comes_from_the_library_found(kit, board, tmp_path):
    (board.root / "usr/lib").mkdir(parents=True)
    (board.root / "usr/lib/librkllmrt.so").write_bytes(runtime_library("librkllmrt.so", "1.2.3"))
    (board.root / "usr/lib/librknnrt.so").write_bytes(runtime_library("librknnrt.so", "2.3.2"))
    r = run(kit, board, "1.2.1", "demo", demo_args(kit, "1.2.1"), lib=tmp_path / "empty")
    assert r.rc == 0, r.err
    assert r.lines[0].startswith("I rkllm: rkllm-runtime version: 1.2.3,")
    assert "===the core num is 2===" in r.out and "ImgEnc Model inference took" not in r.out, "1.2.1 demo build"


def test_demo_built_for_another_callback_abi_crashes(kit, board):
    r = run(kit, board, "1.3.0", "demo", demo_args(kit, "1.3.0"), stdin="0\nexit\n",
            lib=kit.bundles["1.2.1"] / "lib")
    assert r.rc == 139
    assert r.out.endswith("robot: ")


# --- the demo programs -------------------------------------------------------------------------


def test_demo_loop(kit, board):
    r = run(kit, board, "1.2.1", "demo", demo_args(kit, "1.2.1"), stdin="0\nclear\n1\nexit\n", loglevel=0)
    assert r.rc == 0
    menu = MENU_TOP + "[0] <image>What is in the image?\n[1] <image>这张图片中有什么？\n" + MENU_BOTTOM
    en = expected_answer(kit, M2B, models.EN_IMAGE_PROMPT, "1.2.1", "house.png")
    zh = expected_answer(kit, M2B, models.ZH_IMAGE_PROMPT, "1.2.1", "house.png")
    tail = (menu + "\nuser: <image>What is in the image?\nrobot: " + en + "\n" + "\nuser: "
            + "\nuser: <image>这张图片中有什么？\nrobot: " + zh + "\n" + "\nuser: ")
    assert r.out.endswith(tail)


def test_demo_ends_at_end_of_input(kit, board):
    r = run(kit, board, "1.2.1", "demo", demo_args(kit, "1.2.1"), stdin="0\n", loglevel=0)
    assert r.rc == 0
    assert r.out.endswith("\nuser: ")


def test_llm_menu(kit, board):
    r = run(kit, board, "1.2.1", "llm", [kit.llm(M2B), 128, 512], stdin="4\nexit\n", loglevel=0)
    assert r.rc == 0
    assert r.lines[0] == "rkllm init start"
    assert MENU_TOP + "[0] 把下面的现代文翻译成文言文: " in r.out
    assert "\n[4] 把这句话翻译成英文: RK3588是新一代高端处理器，具有高算力、低功耗、超强多媒体、丰富数据接口等特点\n" in r.out
    assert r.out.index(MENU_BOTTOM) < r.out.index("I rkllm: reset chat template:"), "llm sets the template after"
    prompt = "把这句话翻译成英文: RK3588是新一代高端处理器，具有高算力、低功耗、超强多媒体、丰富数据接口等特点"
    assert f"user: {prompt}\nrobot: {expected_answer(kit, M2B, prompt, '1.2.1')}\n" in r.out


def test_1_1_demo_has_no_menu(kit, board):
    r = run(kit, board, "1.1.4", "demo", demo_args(kit, "1.1.4", M2B_TK114), stdin="exit\n")
    assert r.rc == 0
    assert "**********" not in r.out
    assert re.search(r"main: ImgEnc Model loaded in +[\d.]+ ms\n\nuser: $", r.out)


@pytest.mark.parametrize(
    "version, binary, args, usage, rc",
    [
        ("1.3.0", "demo", [], "Usage: ./demo image_path encoder_model_path llm_model_path max_new_tokens "
         "max_context_len rknn_core_num platform [img_start] [img_end] [img_content]\n"
         "  platform: rk3588 | rk3576 | rk3562 | rv1126b\n", 255),
        ("1.2.3", "demo", [], "Usage: ./demo image_path encoder_model_path llm_model_path max_new_tokens "
         "max_context_len rknn_core_num [img_start] [img_end] [img_content]\n", 255),
        ("1.2.1", "demo", ["a", "b", "c", "1", "2"], "Usage: ./demo image_path encoder_model_path llm_model_path "
         "max_new_tokens max_context_len rknn_core_num\n", 255),
        ("1.2.0", "demo", [], "Usage: ./demo image_path encoder_model_path llm_model_path max_new_tokens "
         "max_context_len\n", 255),
        ("1.2.1", "llm", ["m"], "Usage: ./llm model_path max_new_tokens max_context_len\n", 1),
        ("1.2.1", "imgenc", ["m", "i"], "Usage: ./imgenc model_path image_path core_num\n", 255),
        ("1.2.0", "imgenc", ["m"], "Usage: ./imgenc model_path image_path\n", 255),
        ("1.3.0", "imgenc", [], "Usage:\n  ./imgenc <model_path> <image_path> <core_num>\n\nArguments:\n", 255),
    ],
)
def test_usage(kit, board, version, binary, args, usage, rc):
    r = run(kit, board, version, binary, args)
    assert r.rc == rc
    assert r.out == ""
    assert r.err.startswith(usage)


def test_1_3_0_platform_argument(kit, board):
    args = demo_args(kit, "1.3.0")
    args[6] = "rk3399"
    r = run(kit, board, "1.3.0", "demo", args)
    assert r.rc == 255
    assert r.err == "Error: Unknown platform 'rk3399'. Supported: rk3588, rk3576, rk3562, rv1126b\n"
    r = run(kit, board, "1.3.0", "demo", demo_args(kit, "1.3.0"))
    assert r.rc == 0
    assert r.err == ("[Warning] Using default img_start/img_end/img_content: <|vision_start|> , <|vision_end|> , "
                     "<|image_pad|>. Please customize these values according to your model, otherwise the output "
                     "may be incorrect.\n")


# --- packaging ---------------------------------------------------------------------------------


def _cpio_entries(archive: bytes) -> dict[str, tuple[int, bytes]]:
    entries, pos = {}, 0
    while True:
        head = archive[pos:pos + 110]
        mode, size, namesize = int(head[14:22], 16), int(head[54:62], 16), int(head[94:102], 16)
        name = archive[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, archive[pos:pos + size])
        pos += size + (-size % 4)


@pytest.mark.parametrize("version, names", [("1.2.1", {"llm", "imgenc", "demo"}), ("1.3.0", {"imgenc", "demo"})])
def test_add_files_installs_the_sdk_demo(version, names):
    cpio = CpioWriter()
    standins.add_files(cpio, {"name": "t", "rkllm_runtime": version, "rknn_runtime": "2.3.2", "rknpu_driver": "0.9.8"})
    entries = _cpio_entries(gzip.decompress(cpio.to_gzip()))
    base = "opt/rkllm/demo_Linux_aarch64/"
    installed = {n[len(base):] for n in entries if n.startswith(base) and "/" not in n[len(base):]}
    assert installed == names | {"lib"}
    for name in names:
        mode, data = entries[base + name]
        assert mode & 0o777 == 0o755
        assert f"\nDEMO_VERSION={version}\n".encode() in data
        assert data.startswith(b"#!/bin/sh\n")
    assert entries[base + "lib/librkllmrt.so"][1] == runtime_library("librkllmrt.so", version)
    assert entries[base + "lib/librknnrt.so"][1] == runtime_library("librknnrt.so", "2.3.2")
    assert not any("models" in n for n in entries), "models are deployed by the suite, not baked in"


def test_write_bundle(tmp_path):
    root = standins.write_bundle(tmp_path, "1.2.1")
    assert root == tmp_path / "demo_Linux_aarch64"
    assert sorted(p.name for p in root.iterdir()) == ["demo", "imgenc", "lib", "llm"]
    assert os.access(root / "demo", os.X_OK)
    assert (root / "demo").read_bytes() == standins.program("1.2.1")
    with pytest.raises(ValueError):
        standins.program("1.2")
