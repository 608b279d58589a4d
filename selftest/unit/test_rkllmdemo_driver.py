"""RKLLMDemoDriver on the host, driving the twin's stand-ins for llm / imgenc / demo.

The stand-ins print what the real programs print per runtime version; they run under the
host's busybox (the guest's shell) with TWIN_ROOT pointing their board paths at a fake root
and TWIN_TIMESCALE=0.01 shortening their waits. The kit lives in a directory whose name has
a space and a quote, so every path on the command lines needs quoting. A few tests use a
small fake program instead, for loop behaviour the stand-ins never show.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import time
from pathlib import Path

import attr
import pytest
from labgrid import Target
from labgrid.binding import StateError

from hil.kit import pictures
from hil.lab import RKLLMDemoDriver
from hil.lab.rkllmdemo import (DemoCrashed, DemoError, DemoInitError, DemoRun, DemoSetupError, DemoTimeout,
                               demo_argv, demo_release, has_llm, imgenc_argv, llm_argv)
from hil.twin import models, standins
from selftest.unit.localboard import BUSYBOX, LocalCommandDriver, LocalProcessDriver, use_busybox

pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (the guest's shell) on the host")

VERSIONS = ["1.1.4", "1.2.1", "1.2.2", "1.3.0"]
M2B = "qwen2-vl-2b-instruct_w4a16_rk3576"
M3B = "qwen2.5-vl-3b-w4a16_level1_rk3576"
M2B_TK114 = "qwen2-vl-2b-instruct_w4a16_rk3576-tk114"  # converted for the 1.1.x runtime
CORRUPT = "qwen2-vl-2b-instruct_w4a16_rk3576-corrupt"
SEP = "-" * 86
TEXT_PROMPTS = ["What is the capital of France?", "What is 12 multiplied by 12?"]


@attr.s(frozen=True)
class Kit:
    root = attr.ib()
    bundles = attr.ib()
    models = attr.ib()
    picture = attr.ib()

    def llm(self, name):
        return str(self.models / models.files_of(name)[0])

    def vision(self, name):
        return str(self.models / models.files_of(name)[1])

    def answer(self, name, prompt, version, picture=True):
        sha = hashlib.sha256(Path(self.picture).read_bytes()).hexdigest() if picture else None
        return models.answer(Path(self.llm(name)).read_bytes(), prompt, sha, version)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo kit's")
    bundles = {}
    for v in VERSIONS:
        bundles[v] = standins.write_bundle(root / f"sdk {v}", v)
        use_busybox(bundles[v])
    # a 1.3.0 demo next to a 1.2.x runtime: the callback ABI differs, it crashes in the first answer
    mixed = standins.write_bundle(root / "sdk mixed", "1.3.0")
    shutil.copy(bundles["1.2.1"] / "lib/librkllmrt.so", mixed / "lib/librkllmrt.so")
    use_busybox(mixed)
    bundles["mixed"] = mixed
    mdir = root / "models"
    models.write_models(mdir, [M2B, M3B])
    models.write_corrupt_model(mdir, M2B, name=CORRUPT)
    models.write_model(mdir, models.MODELS[M2B].evolve(toolkit_version="1.1.4"), name=M2B_TK114)
    picture = root / "cat picture.png"
    shutil.copy(pictures.PICTURES_DIR / "cat.png", picture)
    return Kit(root, {k: str(v) for k, v in bundles.items()}, mdir, str(picture))


def model_for(version):
    return M2B_TK114 if version < "1.2" else M2B


@pytest.fixture
def board(tmp_path):
    """The fake root TWIN_ROOT points at."""
    root = tmp_path / "root"
    for rel, text in (("sys/kernel/debug/rknpu/version", "RKNPU driver: v0.9.8\n"),
                      ("proc/cmdline", "console=ttyAMA0,115200 panic=0\n"),
                      ("etc/twin/image.env", "TWIN_RKNPU_DRIVER=0.9.8\n"),
                      ("dev/kmsg", "")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "run/twin/fault").mkdir(parents=True)
    return root


@pytest.fixture
def target(board, tmp_path):
    t = Target("demo-unit")
    LocalCommandDriver(t, "shell")
    LocalProcessDriver(t, "process", env={"TWIN_ROOT": board, "TWIN_TIMESCALE": "0.01", "TMPDIR": tmp_path})
    yield t
    t.cleanup()


@pytest.fixture
def demo(target):
    driver = RKLLMDemoDriver(target, "demo", load_timeout=30, turn_timeout=30, exit_timeout=10)
    target.activate(driver)
    return driver


def started(demo):
    return demo.process.started


# --- argument lists --------------------------------------------------------------------------


def test_argument_lists_per_version():
    base = ["i.png", "e.rknn", "m.rkllm", "128", "512"]
    assert demo_argv("1.1.4", "i.png", "e.rknn", "m.rkllm", 128, 512, core_num=3) == base
    assert demo_argv("1.2.0", "i.png", "e.rknn", "m.rkllm", 128, 512) == base
    assert demo_argv("1.2.1", "i.png", "e.rknn", "m.rkllm", 128, 512) == base + ["2"]
    tags = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>")
    assert demo_argv("1.2.3", "i.png", "e.rknn", "m.rkllm", 128, 512, img_tags=tags) == base + ["2", *tags]
    assert demo_argv("1.3.0", "i.png", "e.rknn", "m.rkllm", 128, 512, core_num=1) == base + ["1", "rk3576"]
    assert demo_argv("v1.3.0", "i.png", "e.rknn", "m.rkllm", 2048, 4096, img_tags=tags)[5:] == ["2", "rk3576", *tags]
    with pytest.raises(ValueError, match="1.2.2"):
        demo_argv("1.2.1", "i.png", "e.rknn", "m.rkllm", 128, 512, img_tags=tags)
    assert llm_argv("1.2.1", "m.rkllm", 128, 512) == ["m.rkllm", "128", "512"]
    with pytest.raises(ValueError, match="no llm"):
        llm_argv("1.2.2", "m.rkllm", 128, 512)
    assert [has_llm(v) for v in ("1.1.0", "1.2.1", "1.2.2", "1.3.0")] == [True, True, False, False]
    assert imgenc_argv("1.2.0", "e.rknn", "i.png") == ["e.rknn", "i.png"]
    assert imgenc_argv("1.2.1", "e.rknn", "i.png", 1) == ["e.rknn", "i.png", "1"]
    for bad in ("1.0.1", "1.4.0", "latest"):
        with pytest.raises(ValueError):
            demo_release(bad)


def test_needs_activation_and_a_process_driver(target):
    driver = RKLLMDemoDriver(target, "demo")
    with pytest.raises(StateError):
        driver.run_imgenc("/x", "e", "i", demo_version="1.2.1")
    assert driver.process is target.get_driver(LocalProcessDriver)


def test_prompts_are_checked_before_anything_runs(demo, kit):
    for prompts in (["exit"], ["two\nlines"], [" clear "]):
        with pytest.raises(ValueError):
            demo.run_text(kit.bundles["1.2.1"], kit.llm(M2B), prompts, demo_version="1.2.1", max_new_tokens=128,
                          max_context_len=512)
    with pytest.raises(ValueError, match="image= and encoder="):
        demo.run_text(kit.bundles["1.3.0"], kit.llm(M2B), ["hi"], demo_version="1.3.0", max_new_tokens=128,
                      max_context_len=512)
    assert started(demo) == []


# --- dialogues -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_text_dialogue(demo, kit, version):
    model = model_for(version)
    extra = {} if has_llm(version) else {"image": kit.picture, "encoder": kit.vision(model)}
    run = demo.run_text(kit.bundles[version], kit.llm(model), TEXT_PROMPTS, demo_version=version,
                        max_new_tokens=128, max_context_len=512, **extra)
    assert isinstance(run, DemoRun) and run.ok, run.error
    program = "llm" if version in ("1.1.4", "1.2.1") else "demo"
    assert run.program == program
    args = ([kit.llm(model), "128", "512"] if program == "llm" else
            demo_argv(version, kit.picture, kit.vision(model), kit.llm(model), 128, 512))
    assert run.command == shlex.join([f"./{program}", *args])
    assert run.env == {"LD_LIBRARY_PATH": "./lib", "RKLLM_LOG_LEVEL": "1"} and run.cwd == kit.bundles[version]
    assert run.exit_status == 0 and run.describe_exit == "exit status 0"
    assert f"rkllm-runtime version: {version}, rknpu driver version: 0.9.8, platform: RK3576" in run.transcript
    assert [t.prompt for t in run.turns] == TEXT_PROMPTS
    for turn in run.turns:
        answer = kit.answer(model, turn.prompt, version, picture=False)
        assert turn.text.startswith(f"robot: {answer}\n"), "the turn starts after its prompt"
        assert turn.text.endswith(SEP + "\n\n"), "its perf table is in the turn, the next prompt is not"
        assert turn.text.count(SEP) >= 3 and "Generate" in turn.text
        assert turn.complete and 0 < turn.seconds < run.seconds
    assert run.turns[1].text not in run.turns[0].text
    assert run.transcript.endswith(run.turns[1].text + "user: ")
    assert 0 < run.load_seconds < run.seconds


@pytest.mark.parametrize("version", VERSIONS)
def test_multimodal_dialogue(demo, kit, version):
    model = model_for(version)
    prompts = ["What is in the image?"] if version < "1.2" else ["<image>What is in the image?", "1"]
    run = demo.run_multimodal(kit.bundles[version], kit.picture, kit.vision(model), kit.llm(model), prompts,
                              demo_version=version, max_new_tokens=128, max_context_len=512)
    assert run.ok, run.error
    assert run.command == shlex.join(["./demo", *demo_argv(version, kit.picture, kit.vision(model),
                                                             kit.llm(model), 128, 512)])
    en = kit.answer(model, models.EN_IMAGE_PROMPT, version)
    assert "cat" in en
    assert run.turns[0].text.startswith(f"robot: {en}\n")
    if version >= "1.2":
        zh = kit.answer(model, models.ZH_IMAGE_PROMPT, version)
        assert run.turns[1].text.startswith(f"{models.ZH_IMAGE_PROMPT}\nrobot: {zh}\n"), "the menu echo"
    assert all(t.text.endswith(SEP + "\n\n") for t in run.turns)
    # 1.2.2+ without image tags warn on stderr; the transcript has both streams
    assert ("[Warning] Using default img_start/img_end/img_content" in run.transcript) == (version >= "1.2.2")


def test_image_tags_are_passed(demo, kit):
    tags = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>")
    run = demo.run_multimodal(kit.bundles["1.3.0"], kit.picture, kit.vision(M2B), kit.llm(M2B),
                              ["<image>What is in the image?"], demo_version="1.3.0", max_new_tokens=128,
                              max_context_len=512, img_tags=tags)
    assert run.ok and "[Warning]" not in run.transcript
    assert run.command.endswith(" rk3576 '<|vision_start|>' '<|vision_end|>' '<|image_pad|>'")


def test_without_perf_table_the_prompt_is_confirmed_by_silence(target, kit):
    driver = RKLLMDemoDriver(target, "quiet", log_level=0, prompt_quiet=0.3)
    target.activate(driver)
    run = driver.run_text(kit.bundles["1.2.1"], kit.llm(M2B), TEXT_PROMPTS, demo_version="1.2.1",
                          max_new_tokens=128, max_context_len=512)
    assert run.ok and run.env["RKLLM_LOG_LEVEL"] == "0"
    assert "Prefill" not in run.transcript
    for turn in run.turns:
        assert turn.text == f"robot: {kit.answer(M2B, turn.prompt, '1.2.1', picture=False)}\n\n"
    assert run.seconds > run.load_seconds + 2 * 0.3, "each prompt waited for silence"


def test_imgenc(demo, kit):
    for version in ("1.1.4", "1.2.1", "1.3.0"):
        vec = Path(kit.bundles[version]) / "img_vec.bin"
        vec.unlink(missing_ok=True)
        run = demo.run_imgenc(kit.bundles[version], kit.vision(M2B), kit.picture, demo_version=version)
        assert run.ok and run.turns == []
        assert run.command == shlex.join(["./imgenc", *imgenc_argv(version, kit.vision(M2B), kit.picture)])
        assert "main: Encoder the image cost" in run.transcript
        assert vec.stat().st_size == 196 * 1536 * 4, "written in the demo directory"


# --- failures --------------------------------------------------------------------------------


def test_corrupt_model_is_an_init_failure(demo, kit, tmp_path):
    models.write_corrupt_model(tmp_path, M2B, name=CORRUPT)
    with pytest.raises(DemoInitError) as e:
        demo.run_text(kit.bundles["1.2.1"], kit.llm(CORRUPT), TEXT_PROMPTS, demo_version="1.2.1",
                      max_new_tokens=128, max_context_len=512)
    assert e.value.cause == "llm: rkllm init failed (exit status 255) after 'E rkllm: invalid rkllm model!'"
    assert "E rkllm: invalid rkllm model!" in str(e.value), "the message carries the transcript tail"
    run = e.value.run
    assert run.exit_status == 255 and run.turns == [] and run.load_seconds is None
    assert run.transcript.endswith("E rkllm: invalid rkllm model!\nrkllm init failed\n")
    assert not started(demo)[-1].running

    run = demo.run_text(kit.bundles["1.2.1"], kit.llm(CORRUPT), TEXT_PROMPTS, demo_version="1.2.1",
                        max_new_tokens=128, max_context_len=512, check=False)
    assert not run.ok and run.error.startswith("llm: rkllm init failed") and run.exit_status == 255


def test_embed_size_segfault_is_named(demo, kit):
    with pytest.raises(DemoCrashed) as e:
        demo.run_multimodal(kit.bundles["1.2.1"], kit.picture, kit.vision(M3B), kit.llm(M3B),
                            ["<image>What is in the image?"], demo_version="1.2.1", max_new_tokens=128,
                            max_context_len=512)
    run = e.value.run
    assert run.exit_status == 139
    assert run.describe_exit == "exit status 139 (SIGSEGV: segmentation fault)"
    assert "segmentation fault" in e.value.cause and "EMBED_SIZE 1536" in e.value.cause
    assert run.transcript.rstrip("\n").split("\n")[-1].startswith("main: ImgEnc Model loaded in")
    # imgenc of the same release, the same way; the 1.2.2 demo sizes the buffer from the model
    with pytest.raises(DemoCrashed, match="EMBED_SIZE"):
        demo.run_imgenc(kit.bundles["1.2.1"], kit.vision(M3B), kit.picture, demo_version="1.2.1")
    run = demo.run_multimodal(kit.bundles["1.2.2"], kit.picture, kit.vision(M3B), kit.llm(M3B),
                              ["<image>What is in the image?"], demo_version="1.2.2", max_new_tokens=128,
                              max_context_len=512)
    assert run.ok


def test_crash_mid_dialogue_keeps_the_partial_transcript(demo, kit):
    with pytest.raises(DemoCrashed) as e:
        demo.run_multimodal(kit.bundles["mixed"], kit.picture, kit.vision(M2B), kit.llm(M2B),
                            ["<image>What is in the image?", "1"], demo_version="1.3.0", max_new_tokens=128,
                            max_context_len=512)
    run = e.value.run
    assert e.value.cause.startswith("turn 1 ('<image>What is in the image?'): the program ended "
                                    "(exit status 139 (SIGSEGV: segmentation fault))")
    assert run.exit_status == 139 and run.load_seconds > 0
    assert len(run.turns) == 1 and not run.turns[0].complete and run.turns[0].text == "robot: "
    assert "rkllm-runtime version: 1.2.1" in run.transcript and run.transcript.endswith("user: robot: ")


def test_oom_kill_during_init(demo, kit, board):
    (board / "run/twin/fault/oom-kill").write_text("1\n")
    with pytest.raises(DemoCrashed, match=r"llm crashed: exit status 137 \(SIGKILL: killed \(out of memory\?\)\)"):
        demo.run_text(kit.bundles["1.2.1"], kit.llm(M2B), TEXT_PROMPTS, demo_version="1.2.1",
                      max_new_tokens=128, max_context_len=512)


def test_turn_timeout_returns_promptly(demo, kit, board):
    (board / "run/twin/fault/decode-slow").write_text("95\n")  # 20 times slower decoding
    t0 = time.monotonic()
    with pytest.raises(DemoTimeout) as e:
        # "3" is llm's menu entry with a ~200-token answer: about 3 s here at this speed
        demo.run_text(kit.bundles["1.2.1"], kit.llm(M2B), ["What is the capital of France?", "3"],
                      demo_version="1.2.1", max_new_tokens=512, max_context_len=1024, timeout=0.8)
    elapsed = time.monotonic() - t0
    run = e.value.run
    assert elapsed < run.load_seconds + 0.8 + 1.5
    assert e.value.cause == "turn 2 ('3'): the end of the answer (the next 'user: ') did not come within 0.8 s"
    assert run.stopped and run.exit_status is None and run.describe_exit == "stopped by the driver"
    assert [t.complete for t in run.turns] == [True, False]
    assert "robot: " in run.turns[1].text and SEP not in run.turns[1].text
    assert run.transcript.endswith(run.turns[1].text)
    assert not started(demo)[-1].running


def test_load_timeout(demo, kit, target):
    demo.process.env["TWIN_TIMESCALE"] = "100"
    t0 = time.monotonic()
    with pytest.raises(DemoTimeout, match=r"demo not ready \(no 'user: ' prompt\) within 0.5 s"):
        demo.run_multimodal(kit.bundles["1.2.2"], kit.picture, kit.vision(M2B), kit.llm(M2B), ["0"],
                            demo_version="1.2.2", max_new_tokens=128, max_context_len=512, load_timeout=0.5)
    assert time.monotonic() - t0 < 2.5
    assert not started(demo)[-1].running


def test_arguments_of_another_release_are_named(demo, kit):
    with pytest.raises(DemoInitError, match="demo rejected its arguments .* are they those of a 1.2.1 demo"):
        demo.run_multimodal(kit.bundles["1.3.0"], kit.picture, kit.vision(M2B), kit.llm(M2B), ["0"],
                            demo_version="1.2.1", max_new_tokens=128, max_context_len=512)


def test_missing_directory_or_program(demo, kit):
    with pytest.raises(DemoSetupError, match="has no llm .*dropped llm in 1.2.2.*holds: demo imgenc lib"):
        demo.run_text(kit.bundles["1.2.2"], kit.llm(M2B), ["hi"], demo_version="1.2.1", max_new_tokens=128,
                      max_context_len=512)
    with pytest.raises(DemoSetupError, match="no demo directory /nonexistent"):
        demo.run_imgenc("/nonexistent", kit.vision(M2B), kit.picture, demo_version="1.2.1")
    assert started(demo) == []


# --- loop behaviour, with a fake program -------------------------------------------------------

FAKE_LLM = r"""#!/bin/sh
echo "rkllm init success"
n=0
while :; do
    printf '\nuser: '
    if ! IFS= read -r line; then sleep 0.05; continue; fi   # like the real demo, EOF is no end
    [ "$line" = exit ] && { [ -n "$IGNORE_EXIT" ] || exit 0; }
    n=$((n + 1))
    printf 'robot: Here is a dialogue.\nuser: hello\n'       # a model writing a prompt of its own
    sleep 0.2
    printf 'robot: hi\n'
done
"""


@pytest.fixture
def fake(tmp_path):
    bundle = tmp_path / "fake demo"
    bundle.mkdir()
    (bundle / "llm").write_text(FAKE_LLM)
    (bundle / "llm").chmod(0o755)
    use_busybox(bundle)
    return str(bundle)


def test_a_user_prompt_inside_an_answer_is_not_the_end(target, fake):
    driver = RKLLMDemoDriver(target, "fake", prompt_quiet=0.5, exit_timeout=2)
    target.activate(driver)
    run = driver.run_text(fake, "m.rkllm", ["first", "second"], demo_version="1.2.1", max_new_tokens=8,
                          max_context_len=64)
    assert run.ok
    assert [t.text for t in run.turns] == ["robot: Here is a dialogue.\nuser: hello\nrobot: hi\n\n"] * 2
    assert all(0.2 <= t.seconds < 1.0 for t in run.turns)


def test_a_program_that_ignores_exit_is_stopped(target, fake):
    target.get_driver(LocalProcessDriver).env["IGNORE_EXIT"] = "1"
    driver = RKLLMDemoDriver(target, "fake", prompt_quiet=0.3, exit_timeout=0.5)
    target.activate(driver)
    with pytest.raises(DemoTimeout, match="llm still running 0.5 s after 'exit'") as e:
        driver.run_text(fake, "m.rkllm", ["first"], demo_version="1.2.1", max_new_tokens=8, max_context_len=64)
    assert e.value.run.stopped and len(e.value.run.turns) == 1 and e.value.run.turns[0].complete
    assert not driver.process.started[-1].running


def test_error_hierarchy():
    assert issubclass(DemoTimeout, TimeoutError) and issubclass(DemoTimeout, DemoError)
    err = DemoCrashed("boom", DemoRun("demo", "./demo", "/d", transcript="x" * 5000 + "last words"))
    assert str(err).startswith("boom\n--- last output ---\n") and str(err).endswith("last words")
    assert len(str(err)) < 2100
