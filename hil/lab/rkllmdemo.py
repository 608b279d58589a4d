"""The RKLLM SDK's multimodal demo programs (``llm``, ``imgenc``, ``demo``) run on a board.

They are what Rockchip ships to try a model, so the suite qualifies a board by running them
as a user would: from the deployed ``demo_Linux_aarch64`` directory with
``LD_LIBRARY_PATH=./lib`` and ``RKLLM_LOG_LEVEL=1`` (the performance table). Their arguments
changed with every SDK release (reference/rockchip.md §3.2); ``demo_argv`` and friends know
each version's list. ``llm`` and ``demo`` are dialogues -- ``user: `` prompt, ``robot: ``
answer -- that loop forever on end of input, so the driver answers each prompt, waits for
the next one and ends with ``exit``; it never relies on EOF.

Every run keeps the full raw transcript (stdout and stderr merged) in ``DemoRun``; the
parsers in ``hil.rockchip`` read the log lines and tables from it. Failures raise a
``DemoError`` subclass that carries the partial ``DemoRun``, or, with ``check=False``, are
returned in it.

Example environment entry::

    drivers:
      ParamikoSSHDriver: {}    # CommandProtocol and ProcessProtocol
      RKLLMDemoDriver: {load_timeout: 300, turn_timeout: 600}
"""

from __future__ import annotations

import re
import shlex
import signal
import time

import attr
from labgrid.driver import Driver
from labgrid.factory import target_factory
from labgrid.step import step

from hil.lab.process import TAIL_CHARS, ProcessExited, ProcessProtocol, ProcessTimeout, RemoteProcess, describe_exit
from hil.rockchip import versions

PROMPT = re.compile(r"^user: ", re.M)
ANSWER = re.compile(r"robot: ")
INIT_FAILED = re.compile(r"^rkllm init failed", re.M)
# A real prompt follows the perf table (RKLLM_LOG_LEVEL >= 1) or a failed run's "\run error".
_AFTER_TURN = re.compile(r"(?:-{86}|\\run error)[ \t]*\r?\n\r?\n\Z")
_ANY = re.compile(r"[\s\S]")
SEPARATE = ("exit", "clear")  # loop commands of the demos, not prompts

OLDEST, NEWEST = (1, 1, 0), (1, 3)  # argument lists known for 1.1.0 .. 1.3.x


def demo_release(version: str) -> tuple[int, int, int]:
    """'1.2.1' (or 'v1.2.1') -> (1, 2, 1), for a demo whose argument list this module knows.

    A pre-release or build suffix (``1.3.0b1``) is refused: its arguments may not be the release's."""
    text = str(version)
    try:
        release = versions.parse_version(text)
    except ValueError:
        release = None
    if release is None or versions.compare(text, "{}.{}.{}".format(*release)) != 0:
        raise ValueError(f"demo_version must look like 1.2.1, got {version!r}")
    if release < OLDEST or release[:2] > NEWEST:
        raise ValueError(f"the demo arguments of RKLLM {version} are not known (1.1.0 - 1.3.x)")
    return release


def has_llm(version: str) -> bool:
    """The text-only ``llm`` program was dropped in 1.2.2."""
    return demo_release(version) < (1, 2, 2)


def llm_argv(version: str, llm_model: str, max_new_tokens: int, max_context_len: int) -> list[str]:
    """``./llm <model.rkllm> <max_new_tokens> <max_context_len>`` (1.1.x - 1.2.1)."""
    if not has_llm(version):
        raise ValueError(f"the RKLLM {version} demo has no llm program (dropped in 1.2.2)")
    return [str(llm_model), str(int(max_new_tokens)), str(int(max_context_len))]


def demo_argv(version: str, image: str, encoder: str, llm_model: str, max_new_tokens: int, max_context_len: int,
              core_num: int = 2, platform: str = "rk3576", img_tags: tuple[str, str, str] | None = None) -> list[str]:
    """``./demo`` arguments: 1.1.x/1.2.0 five; 1.2.1 adds rknn_core_num; 1.2.2+ optional image
    tags; 1.3.0 adds the platform before them. core_num and platform are dropped where the
    demo has no such argument."""
    v = demo_release(version)
    argv = [str(image), str(encoder), str(llm_model), str(int(max_new_tokens)), str(int(max_context_len))]
    if v >= (1, 2, 1):
        argv.append(str(int(core_num)))
    if v >= (1, 3, 0):
        argv.append(str(platform))
    if img_tags is not None:
        if v < (1, 2, 2):
            raise ValueError(f"the RKLLM {version} demo takes no img_start/img_end/img_content (1.2.2+)")
        if len(img_tags) != 3:
            raise ValueError("img_tags is (img_start, img_end, img_content)")
        argv += [str(t) for t in img_tags]
    return argv


def imgenc_argv(version: str, encoder: str, image: str, core_num: int = 2) -> list[str]:
    """``./imgenc <encoder.rknn> <image> [core_num]`` (core_num from 1.2.1)."""
    argv = [str(encoder), str(image)]
    if demo_release(version) >= (1, 2, 1):
        argv.append(str(int(core_num)))
    return argv


@attr.s
class DemoTurn:
    """One prompt: the raw output from after ``user: `` up to the next prompt, and its time."""

    prompt = attr.ib()
    text = attr.ib(default="")
    seconds = attr.ib(default=0.0)
    complete = attr.ib(default=True)  # False: the run failed during this turn


@attr.s
class DemoRun:
    """One run of a demo program, as complete as it got."""

    program = attr.ib()
    command = attr.ib()  # as started in ``cwd`` with ``env``
    cwd = attr.ib()
    env = attr.ib(factory=dict)
    transcript = attr.ib(default="")  # stdout + stderr, raw
    turns = attr.ib(factory=list)
    exit_status = attr.ib(default=None)  # as a shell reports it: 128 + N for signal N
    stopped = attr.ib(default=False)  # the driver had to stop it (timeout)
    seconds = attr.ib(default=0.0)  # wall time from start to end
    load_seconds = attr.ib(default=None)  # start to the first ``user: `` prompt
    error = attr.ib(default=None)  # the failure's message, when returned with check=False

    @property
    def describe_exit(self) -> str:
        if self.exit_status is None and self.stopped:
            return "stopped by the driver"
        return describe_exit(self.exit_status)

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_status == 0

    @property
    def shell_line(self) -> str:
        """The run as one shell line, to repeat it by hand."""
        env = [f"{k}={shlex.quote(v)}" for k, v in self.env.items()]
        return " ".join([f"cd {shlex.quote(self.cwd)} &&", *env, self.command])

    def tail(self, chars: int = TAIL_CHARS) -> str:
        return self.transcript[-chars:]


class DemoError(RuntimeError):
    """A demo run failed; ``run`` holds what it printed (None if it never started)."""

    def __init__(self, cause: str, run: DemoRun | None = None):
        self.cause = cause
        self.run = run
        tail = run.tail() if run else ""
        super().__init__(f"{cause}\n--- last output ---\n{tail}" if tail else cause)


class DemoSetupError(DemoError):
    """The demo directory or program is not where it was said to be."""


class DemoInitError(DemoError):
    """The program failed before it was ready: rkllm/rknn init, arguments, libraries."""


class DemoCrashed(DemoError):
    """The program ended by a signal or unexpectedly."""


class DemoTimeout(DemoError, TimeoutError):
    """The program did not get on within a timeout; it was stopped."""


class _Stop(Exception):
    def __init__(self, kind: type[DemoError], cause: str):
        super().__init__(cause)
        self.kind, self.cause = kind, cause


def _by_signal(status: int | None) -> bool:
    """Shells report death by signal N as 128 + N (exit(-1) is 255, no signal)."""
    try:
        return status is not None and status > 128 and bool(signal.Signals(status - 128))
    except ValueError:
        return False


def _last_line(text: str) -> str:
    lines = [line for line in text.replace("\r", "").split("\n") if line.strip()]
    return lines[-1] if lines else ""


@target_factory.reg_driver
@attr.s(eq=False)
class RKLLMDemoDriver(Driver):
    """Runs the SDK demos of a deployed ``demo_Linux_aarch64`` directory and keeps their output.

    Args:
        load_timeout (float): s from start until the first ``user:`` prompt (model loading)
        turn_timeout (float): s for one prompt's answer and its perf table
        exit_timeout (float): s for the program to end after ``exit``
        log_level (int): RKLLM_LOG_LEVEL; 1 prints the perf table after each answer
        prompt_quiet (float): s of silence that confirm a ``user:`` prompt not preceded by
            a perf table (a model may write "user: " itself)
        rknn_core_num (int): NPU cores the vision encoder runs on (``demo``/``imgenc`` from
            1.2.1; ``rknn_set_core_mask``); the suite's configuration check holds it against
            the board's NPU, so a wrong value is a named failure, not a slow encoder
        demo_version (str): the SDK release of the deployed demo build, whose argument list
            the driver uses; usually set once by the suite from the bundle (``use_bundle``)
        platform (str): the SoC the 1.3.0+ ``demo`` is told, lower case (``rk3576``); the
            suite sets it from the board's device tree
    """

    # ProcessProtocol as a class: labgrid resolves names only for registered classes.
    bindings = {"command": "CommandProtocol", "process": ProcessProtocol}

    load_timeout = attr.ib(default=300.0, converter=float)
    turn_timeout = attr.ib(default=600.0, converter=float)
    exit_timeout = attr.ib(default=30.0, converter=float)
    log_level = attr.ib(default=1, converter=int)
    prompt_quiet = attr.ib(default=0.5, converter=float)
    command_timeout = attr.ib(default=30.0, converter=float)
    rknn_core_num = attr.ib(default=2, converter=int)
    demo_version = attr.ib(default=None, validator=attr.validators.optional(attr.validators.instance_of(str)))
    platform = attr.ib(default="rk3576", converter=lambda p: str(p).lower())

    def use_bundle(self, demo_version: str, platform: str | None = None) -> None:
        """Say once which demo build runs (its argument list) and on which SoC."""
        demo_release(demo_version)  # a version whose arguments are unknown fails here, not at the first run
        self.demo_version = str(demo_version)
        if platform:
            self.platform = str(platform).lower()

    def _version(self, demo_version: str | None) -> str:
        version = demo_version or self.demo_version
        if version is None:
            raise ValueError("the demo build's version is not known: set demo_version in the env or call use_bundle()")
        return version

    # --- API -----------------------------------------------------------------------------
    @Driver.check_active
    @step(args=["bundle_dir", "llm_model", "prompts", "demo_version"])
    def run_text(self, bundle_dir: str, llm_model: str, prompts, *, max_new_tokens: int, max_context_len: int,
                 demo_version: str | None = None, timeout: float | None = None, load_timeout: float | None = None,
                 image: str | None = None, encoder: str | None = None, core_num: int | None = None,
                 platform: str | None = None, img_tags=None, check: bool = True, on_turn=None) -> DemoRun:
        """Text prompts: ``llm`` up to 1.2.1; from 1.2.2 ``demo``, which loads the vision encoder
        and an image even for text, hence ``image`` and ``encoder`` (there a prompt with
        ``<image>``, or the menu number 0 or 1, goes with the picture). ``timeout`` is per turn.
        ``prompts`` may be an iterator, asked for each next prompt after the turn before it;
        ``on_turn(n, turn)`` is called after each complete turn."""
        demo_version = self._version(demo_version)
        if has_llm(demo_version):
            program = "llm"
            argv = llm_argv(demo_version, llm_model, max_new_tokens, max_context_len)
        else:
            if image is None or encoder is None:
                raise ValueError(f"RKLLM {demo_version} has no llm program; its demo needs image= and encoder= "
                                 "(the vision encoder) even for text prompts")
            program = "demo"
            argv = demo_argv(demo_version, image, encoder, llm_model, max_new_tokens, max_context_len,
                             self._core_num(core_num), platform or self.platform, img_tags)
        return self._dialogue(bundle_dir, program, argv, prompts, demo_version, timeout, load_timeout, check,
                              on_turn)

    @Driver.check_active
    @step(args=["bundle_dir", "image", "llm_model", "prompts", "demo_version"])
    def run_multimodal(self, bundle_dir: str, image: str, encoder: str, llm_model: str, prompts, *,
                       max_new_tokens: int, max_context_len: int, demo_version: str | None = None,
                       core_num: int | None = None, platform: str | None = None, img_tags=None,
                       timeout: float | None = None, load_timeout: float | None = None,
                       check: bool = True, on_turn=None) -> DemoRun:
        """``demo`` with a picture. From 1.2.0 only prompts containing ``<image>`` (or the menu
        numbers 0/1) go with the picture; 1.1.x sends every prompt with it. Prompts are sent
        as given. ``timeout`` is per turn."""
        demo_version = self._version(demo_version)
        argv = demo_argv(demo_version, image, encoder, llm_model, max_new_tokens, max_context_len,
                         self._core_num(core_num), platform or self.platform, img_tags)
        if isinstance(prompts, (str, list, tuple)) and demo_release(demo_version) >= (1, 2, 0) and not any(
                "<image>" in p or p.strip() in ("0", "1") for p in self._prompts(prompts)):
            self.logger.warning("no prompt has <image>: the %s demo will not show the picture", demo_version)
        return self._dialogue(bundle_dir, "demo", argv, prompts, demo_version, timeout, load_timeout, check,
                              on_turn)

    @Driver.check_active
    @step(args=["bundle_dir", "encoder", "image", "demo_version"])
    def run_imgenc(self, bundle_dir: str, encoder: str, image: str, *, demo_version: str | None = None,
                   core_num: int | None = None, timeout: float | None = None, check: bool = True) -> DemoRun:
        """``imgenc``: load the vision encoder, encode the picture, write ./img_vec.bin, end."""
        demo_version = self._version(demo_version)
        argv = imgenc_argv(demo_version, encoder, image, self._core_num(core_num))
        timeout = self.load_timeout if timeout is None else timeout

        def encode(run: DemoRun, proc: RemoteProcess, t0: float) -> None:
            run.exit_status = proc.wait(timeout, check=False)
            if run.exit_status is None:
                raise _Stop(DemoTimeout, f"imgenc still running after {timeout:g} s")
            if run.exit_status != 0:
                raise _Stop(*self._failure(proc.output, run.exit_status, demo_version, "imgenc"))

        return self._run(bundle_dir, "imgenc", argv, encode, check)

    # --- the dialogue --------------------------------------------------------------------
    def _core_num(self, core_num: int | None) -> int:
        return self.rknn_core_num if core_num is None else core_num

    @staticmethod
    def _prompts(prompts) -> list[str]:
        if isinstance(prompts, str):
            prompts = [prompts]
        return [RKLLMDemoDriver._prompt(p) for p in prompts]

    @staticmethod
    def _prompt(p) -> str:
        if not isinstance(p, str) or "\n" in p or "\r" in p:
            raise ValueError(f"a prompt is one line of text (the demo reads a line), got {p!r}")
        if p.strip() in SEPARATE:
            raise ValueError(f"{p!r} is a command of the demo loop, not a prompt")
        return p

    def _prompt_stream(self, prompts):
        """A list is checked whole before the demo starts; an iterator (a soak's, which decides
        the next prompt after each turn) one prompt at a time, as the dialogue asks for it."""
        if isinstance(prompts, (str, list, tuple)):
            return self._prompts(prompts)
        return (self._prompt(p) for p in prompts)

    def _check_bundle(self, bundle_dir: str, program: str) -> None:
        d, prog = shlex.quote(bundle_dir), shlex.quote(f"./{program}")
        script = (f"if ! cd {d} 2>/dev/null; then echo @nodir; elif [ ! -e {prog} ]; then echo @noprog; ls; "
                  f"elif [ ! -x {prog} ]; then echo @noexec; else echo @ok; fi")
        stdout, _, _ = self.command.run(script, timeout=self.command_timeout)
        lines = [line.strip() for line in stdout]
        if "@ok" in lines:
            return
        if "@nodir" in lines:
            raise DemoSetupError(f"no demo directory {bundle_dir} on the board (deploy demo_Linux_aarch64 first)")
        if "@noprog" in lines:
            contents = " ".join(lines[lines.index("@noprog") + 1:])
            hint = " (the SDK dropped llm in 1.2.2)" if program == "llm" else ""
            raise DemoSetupError(f"{bundle_dir} has no {program}{hint}; it holds: {contents or 'nothing'}")
        if "@noexec" in lines:
            raise DemoSetupError(f"{bundle_dir}/{program} is not executable")
        raise DemoSetupError(f"could not look into {bundle_dir}: {' '.join(lines)}")

    def _run(self, bundle_dir: str, program: str, argv: list[str], body, check: bool) -> DemoRun:
        """Start ``./program argv`` in the demo directory, let ``body`` talk to it, end it."""
        self._check_bundle(bundle_dir, program)
        command = shlex.join([f"./{program}", *argv])
        env = {"LD_LIBRARY_PATH": "./lib", "RKLLM_LOG_LEVEL": str(self.log_level)}
        run = DemoRun(program=program, command=command, cwd=bundle_dir, env=env)
        self.logger.info("running %s", run.shell_line)
        proc = self.process.start(command, env=env, cwd=bundle_dir)
        t0 = time.monotonic()
        try:
            body(run, proc, t0)
        except _Stop as stop:
            return self._finish(run, proc, t0, stop, check)
        except BaseException:
            proc.abandon()  # never leave it running on the board
            raise
        return self._finish(run, proc, t0, None, check)

    def _dialogue(self, bundle_dir, program, argv, prompts, version, turn_timeout, load_timeout, check,
                  on_turn=None) -> DemoRun:
        prompts = self._prompt_stream(prompts)
        turn_timeout = self.turn_timeout if turn_timeout is None else turn_timeout
        load_timeout = self.load_timeout if load_timeout is None else load_timeout

        def converse(run: DemoRun, proc: RemoteProcess, t0: float) -> None:
            self._await_ready(proc, load_timeout, version, program)
            run.load_seconds = time.monotonic() - t0
            try:
                for n, prompt in enumerate(prompts, 1):
                    run.turns.append(self._turn(proc, n, prompt, turn_timeout))
                    if on_turn is not None:
                        on_turn(n, run.turns[-1])
            except _TurnStop as stop:
                run.turns.append(stop.turn)
                raise
            proc.sendline("exit")
            run.exit_status = proc.wait(self.exit_timeout, check=False)
            if run.exit_status is None:
                raise _Stop(DemoTimeout, f"{program} still running {self.exit_timeout:g} s after 'exit'")
            if run.exit_status != 0:
                raise _Stop(DemoCrashed, f"{program} ended with {describe_exit(run.exit_status)} after 'exit'")

        return self._run(bundle_dir, program, argv, converse, check)

    def _await_ready(self, proc: RemoteProcess, timeout: float, version: str, program: str) -> None:
        """Until the first ``user:`` prompt: the model and (demo) the vision encoder are loaded."""
        pattern = re.compile(f"{PROMPT.pattern}|{INIT_FAILED.pattern}", re.M)
        try:
            m = proc.expect(pattern, timeout)
        except ProcessTimeout:
            raise _Stop(DemoTimeout, f"{program} not ready (no 'user: ' prompt) within {timeout:g} s") from None
        except ProcessExited as e:
            raise _Stop(*self._failure(proc.output, e.status, version, program)) from None
        if m[0].startswith("rkllm init failed"):
            status = proc.wait(self.exit_timeout, check=False)
            raise _Stop(*self._failure(proc.output, status, version, program))

    def _turn(self, proc: RemoteProcess, n: int, prompt: str, timeout: float) -> DemoTurn:
        start = proc.position
        t0 = time.monotonic()
        deadline = t0 + timeout
        turn = DemoTurn(prompt)
        proc.sendline(prompt)
        waiting = "'robot: '"  # what did not come
        try:
            proc.expect(ANSWER, timeout)
            waiting = "the end of the answer (the next 'user: ')"
            while True:
                m = proc.expect(PROMPT, max(0.0, deadline - time.monotonic()))
                seen = time.monotonic()
                if self._is_prompt(proc, m, deadline):
                    break
        except ProcessTimeout:
            turn.text, turn.seconds, turn.complete = proc.output[start:], time.monotonic() - t0, False
            raise _TurnStop(turn, DemoTimeout, f"turn {n} ({prompt!r}): {waiting} did not come within "
                            f"{timeout:g} s") from None
        except ProcessExited as e:
            turn.text, turn.seconds, turn.complete = proc.output[start:], time.monotonic() - t0, False
            raise _TurnStop(turn, DemoCrashed, f"turn {n} ({prompt!r}): the program ended "
                            f"({describe_exit(e.status)}) while we waited for {waiting}; last line: "
                            f"{_last_line(proc.output)!r}") from None
        turn.text, turn.seconds = proc.output[start:m.start()], seen - t0
        return turn

    def _is_prompt(self, proc: RemoteProcess, m: re.Match, deadline: float) -> bool:
        """A ``user: `` after the perf table (or a run error) is the demo's; any other only if
        nothing follows it for ``prompt_quiet`` s, since the demo then waits for input."""
        if _AFTER_TURN.search(proc.output, max(0, m.start() - 200), m.start()):
            return True
        quiet = min(self.prompt_quiet, max(0.0, deadline - time.monotonic()))
        try:
            proc.expect(_ANY, quiet)
        except (ProcessTimeout, ProcessExited):
            return True  # silence (or the end, which the next step reports)
        finally:
            proc.position = m.end()
        return False

    # --- endings -------------------------------------------------------------------------
    @staticmethod
    def _failure(output: str, status: int | None, version: str, program: str) -> tuple[type[DemoError], str]:
        """Name why the program ended before it was ready (or imgenc failed)."""
        last = _last_line(output)
        how = describe_exit(status)
        if _by_signal(status):
            cause = f"{program} crashed: {how}; last line: {last!r}"
            if (status == 139 and demo_release(version) < (1, 2, 2)
                    and re.match(r"main: (?:ImgEnc )?Model loaded", last)):
                cause += (" -- demos up to 1.2.1 copy the encoder output into a buffer sized for "
                          "EMBED_SIZE 1536; an encoder with wider embeddings (Qwen2.5-VL-3B: 2048) "
                          "overflows it. The 1.2.2+ demos size it from the model.")
            return DemoCrashed, cause
        failed = INIT_FAILED.search(output)
        if failed:
            before = _last_line(output[:failed.start()])
            return DemoInitError, f"{program}: rkllm init failed ({how}) after {before!r}"
        if "init_imgenc fail" in output or "rknn_init fail" in output:
            return DemoInitError, f"{program}: the vision encoder did not load (rknn_init failed, {how})"
        if "Usage:" in output or "Error: Unknown platform" in output:
            return DemoInitError, (f"{program} rejected its arguments ({how}): are they those of a "
                                   f"{version} demo? {last!r}")
        if "error while loading shared libraries" in output:
            return DemoInitError, f"{program}: a runtime library is missing ({how}): {last!r}"
        return DemoInitError, f"{program} ended before it was ready ({how}); last line: {last!r}"

    def _finish(self, run: DemoRun, proc: RemoteProcess, t0: float, stop: _Stop | None, check: bool) -> DemoRun:
        if run.exit_status is None:
            status = proc.wait(0, check=False)  # ended meanwhile?
            if status is None:
                run.stopped = True
            run.exit_status = status
        proc.close()
        run.transcript = proc.output
        run.seconds = time.monotonic() - t0
        if stop is None:
            self.logger.info("%s: %s after %.1f s, %d turns", run.program, run.describe_exit, run.seconds,
                             len(run.turns))
            return run
        error = stop.kind(stop.cause, run)
        run.error = str(stop.cause)
        self.logger.warning("%s", stop.cause)
        if check:
            raise error
        return run


class _TurnStop(_Stop):
    def __init__(self, turn: DemoTurn, kind: type[DemoError], cause: str):
        super().__init__(kind, cause)
        self.turn = turn
