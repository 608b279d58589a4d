"""Arguments for, and the output of, Rockchip's USB flashing tools: rkdeveloptool and upgrade_tool.

Pure code apart from ``main``: the labgrid drivers run the commands and hand the output here,
and ``hil parse flash-tool`` hands a transcript a user pasted. Both go through one reader
(``read_output`` for one run, ``parse_transcript`` for a paste with prompts, commands, menus and
timestamps), which splits the text into steps and says per step what was listed, what failed in
the tool's own words and whether it succeeded. Every check turns a failure into a
``FlashToolError`` subclass whose message names the cause and what to do about it, so a failed
flash in a report reads as a diagnosis, not as a tool dump.

The strings are the tools' own: rkdeveloptool 1.32 (``main.cpp``; errors are wrapped in the
colour escapes ``ESC[30;41m`` .. ``ESC[0m``, progress lines are redrawn with ``ESC[1A ESC[2K``)
and the closed-source upgrade_tool as seen in vendor documentation and pasted transcripts.
"""

from __future__ import annotations

import dataclasses
import errno as errnomod
import json
import os
import re
import struct
import sys

from hil.rockchip.text import capture_name, clean_lines, clean_text, read_capture

RK_VID = 0x2207
RK3576_PID = 0x350E

#: Rockusb PIDs of other Rockchip SoCs, to say which board is on the cable instead.
SOC_BY_PID = {
    0x350A: "RK3566/RK3568",
    0x350B: "RK3588",
    0x350C: "RK3528",
    0x350D: "RK3562",
    0x350E: "RK3576",
    0x350F: "RK3506",
    0x330C: "RK3399",
    0x330D: "PX30",
    0x330E: "RK3308",
    0x320C: "RK3328",
    0x320A: "RK3288",
    0x110C: "RV1106",
}

#: ``rkdeveloptool cs`` codes.
STORAGE_CODES = {"emmc": 1, "sd": 2, "spinor": 9}

SECTOR = 512
TAIL_CHARS = 1500

_DEVICE_LINE = re.compile(
    r"DevNo=(?P<devno>\d+)\s+Vid=0x(?P<vid>[0-9a-fA-F]+),\s*Pid=0x(?P<pid>[0-9a-fA-F]+),"
    r"\s*LocationID=(?P<location>[0-9a-fA-F]+)\s+\**(?:Mode=)?(?P<mode>\w+)\**(?:\s+SerialNo=(?P<serial>\S*))?"
)
_OPEN_FAILED = re.compile(r"Write LBA failed, err=(-?\d+), can't open file: (.*)")
_VERSION = re.compile(r"rkdeveloptool ver (\S+)")

NOT_IN_LOADER_HINT = (
    "the board is not in loader mode: hold MASKROM (or have the relay wired to it pressed) while "
    "powering it on, or run 'reboot loader' on the board; check the USB cable is in the board's "
    "OTG/download port and the host side is connected"
)


# --- errors ------------------------------------------------------------------------------
class FlashToolError(RuntimeError):
    """A flashing step failed; the message says why and what to do, ``output`` keeps the tool's words."""

    def __init__(self, message: str, *, output: str = ""):
        tail = output.strip()[-TAIL_CHARS:]
        super().__init__(f"{message}\n--- tool output ---\n{tail}" if tail else message)
        self.output = output


class NoLoaderDevice(FlashToolError):
    """No rockusb device: the board is not in Maskrom or Loader mode."""


class LoaderTimeout(NoLoaderDevice, TimeoutError):
    """The rockusb device did not appear in time (also a TimeoutError, like the bench's driver)."""


class TooManyDevices(FlashToolError):
    """More than one rockusb device on the host; the tools cannot choose one."""


class WrongSoC(FlashToolError):
    """The rockusb device is a Rockchip SoC other than the RK3576."""


class WrongDevice(FlashToolError):
    """The tool sees a rockusb device, but not at the USB port of this target's loader resource."""


class UsbAccessError(FlashToolError):
    """The tool found the device but could not open it (permissions, or another process holds it)."""


class WrongMode(FlashToolError):
    """The command does not work in the mode the board is in (Maskrom vs. Loader)."""


class LoaderFileError(FlashToolError):
    """The loader file could not be read as a Rockchip loader."""


class LoaderDownloadFailed(FlashToolError):
    """The BootROM did not accept or start the downloaded loader."""


class StorageSelectFailed(FlashToolError):
    """``cs`` failed: no such storage, or the running loader cannot switch storage."""


class ImageOpenFailed(FlashToolError):
    """The tool could not open the image file on the host it runs on."""


class WriteFailed(FlashToolError):
    """Writing the image stopped before 100 %."""


class ResetFailed(FlashToolError):
    """The board did not accept the reset command."""


class UpgradeFailed(FlashToolError):
    """``upgrade_tool uf`` failed in one of its stages; ``stage`` names it."""

    def __init__(self, message: str, *, stage: str | None = None, output: str = ""):
        super().__init__(message, output=output)
        self.stage = stage


class ToolFailed(FlashToolError):
    """The tool failed in a way not recognised here, or its output made no sense."""


class ToolMissing(FlashToolError):
    """The tool is not installed where the loader resource is."""


class ToolTimeout(FlashToolError, TimeoutError):
    """The tool ran longer than its time limit and was stopped."""


# --- devices -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RockusbDevice:
    """One line of ``ld``: a Rockchip SoC in Maskrom (BootROM) or Loader (U-Boot rockusb) mode."""

    devno: int
    vid: int
    pid: int
    location: str  # as printed; rkdeveloptool prints (bus << 8) + port in hex
    mode: str  # "Maskrom", "Loader" or "Unknown"
    serial: str | None = None  # upgrade_tool only

    @property
    def soc(self) -> str:
        if self.vid != RK_VID:
            return "not a Rockchip device"
        return SOC_BY_PID.get(self.pid, "unknown Rockchip SoC")

    @property
    def usb_id(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"

    def bus_port(self) -> tuple[int, int]:
        """Bus and port from an rkdeveloptool LocationID (``libusb`` bus number << 8 | port number)."""
        value = int(self.location, 16)
        return value >> 8, value & 0xFF


def clean(output: str | bytes) -> str:
    """The tool's output as text (processwrapper hands over bytes), cleaned by ``clean_text``.

    The redraws (``ESC[1A ESC[2K`` before each progress line) go with the escapes, so every
    progress state stays on a line of its own and the parsers read the last one."""
    if isinstance(output, bytes):
        output = output.decode("utf-8", errors="replace")
    return clean_text(output)


# --- the reader: one run's output, or a pasted transcript ---------------------------------
#: Commands that only look (list, version, help, menu navigation): not "the last operation" of a
#: transcript unless they found no device.
QUERY_COMMANDS = frozenset({"ld", "list", "", "-v", "v", "--version", "-h", "h", "--help", "help", "q", "quit",
                            "cd", "sd"})

# A command line: an optional prompt (anything ending in $ # > % : or ]), optional sudo (or time,
# timeout 600, env ... as the drivers run it), an optional path, the tool, its arguments. The
# tool's name must end at a blank or the line's end, so paths such as /opt/upgrade_tool/config.ini
# in the tools' own output are not taken for a command.
_TOOL_COMMAND = re.compile(
    r"^(?P<prompt>.*?[$#>%:\]]\s*)?"
    r"(?P<sudo>(?:(?:sudo|doas|time|timeout|nice|stdbuf|env)(?:\s+(?:-\S+|\d\S*|\w+=\S*))*\s+)+)?"
    r"(?P<path>\S*[/\\])?(?P<tool>rkdeveloptool|upgrade_tool)(?:\.exe)?(?:\s+(?P<args>.*))?$", re.I)
#: Subcommands of either tool (upgrade_tool's in any case). A line that starts with the bare tool
#: name must name one of these to be a command: "rkdeveloptool ver 1.32" is the tool's own output.
KNOWN_COMMANDS = frozenset("""
    -h --help -v --version cs db ul rl wl wlx gpt prm rcb rd rfi rci rid ppt lf ef td ld pack unpack tagspl
    uf di pl rp rs ws eb el cd sd v h q sn ssd
""".split())
_ROCKUSB_PROMPT = re.compile(r"^Rockusb>\s*(?P<args>.*)$", re.I)  # upgrade_tool's interactive prompt
# Another program's command line: a shell prompt with something after it, or a bare prompt.
_PROMPT = re.compile(
    r"^(?:\([\w.-]+\)\s*)?(?:\[[^\]]*\]\s*[$#]|[\w.-]+@[\w.-]+(?::\S*)?\s*[$#%]|\S*[$#]|[\w-]+\s+\d+\s+[$#]"
    r"|[A-Za-z]:\\\S*>)(?:\s+.*)?$")
_SHELL_COMMAND = re.compile(
    r"^(?:sudo|lsusb|dmesg|ls|cd|cat|sha256sum|md5sum|dd|wget|curl|git|make|adb|fastboot|echo|hexdump|xxd|"
    r"nix-shell|docker|unzip|xz|7z|uname|lsblk|sync|reboot|file)(?:\s|$)")
# Leading timestamps (upgrade_tool's log "15:29:09<tab>", ts/script captures, ISO stamps).
_TIMESTAMP = re.compile(
    r"^\[?(?:\d{4}-\d\d-\d\d[ T]|[A-Z][a-z]{2}\s+\d{1,2}\s+)?\d{1,2}:\d\d:\d\d(?:[.,]\d+)?"
    r"(?:Z|[+-]\d\d:?\d\d)?\]?(?:\s+|$)")
_SYSLOG = re.compile(  # a kernel log line, as syslog or dmesg prints it
    r"^(?:[A-Z][a-z]{2}\s+\d{1,2}\s+\d\d:\d\d:\d\d\s+\S+\s+[\w./-]+(?:\[\d+\])?:\s|\[\s*\d+\.\d+\]\s)")
_FENCE = re.compile(r"^(?:`{3}|~{3})\w*$")

_STAGE = re.compile(r"^(?P<stage>[A-Z][A-Za-z ]*?) (?P<state>Start|Success|Fail)$")
_PROGRESS = re.compile(r"(?:Write LBA from file|Read LBA to file|Download Image\.\.\.) ?\((\d+)%\)")
_LISTED = re.compile(r"List of rockusb connected(?:\((\d+)\))?")
_NONE_FOUND = re.compile(r"not found any devices|no found (?:any )?rockusb|did not find any rockusb", re.I)
_LOG_ERROR = re.compile(r"^(?:<LAYER[^>]*>\s*)?(?:Error|ERROR)\s*:")  # upgrade_tool/rkdeveloptool log-file lines
_FAILED = re.compile(
    r"\bfail(?:ed|ure)?\b|\b(?:does|did) not support\b|did not find|\bno(?:t)? found (?:any )?(?:rockusb|devices?|"
    r"partition)|too many rockusb|\bis invalid\b", re.I)
_NOT_A_FAILURE = re.compile(r"^Not found config\.ini", re.I)  # upgrade_tool without its config: harmless
_SUCCEEDED = re.compile(
    r"(?:succeeded\.?|\bOK\.?|\bcomplete\.?|\(100%\))$|^(?:Flash Info:|Chip Info:|Capability:|Flash ID:|"
    r"\*+Partition Info|rkdeveloptool ver )", re.I)
_UF_OK = "Upgrade firmware ok"

#: What a line of output says about the command that printed it, for output pasted without its command.
_INFERRED = [
    (re.compile(r"^Downloading bootloader|^Opening loader failed"), "db"),
    (re.compile(r"^Upgrading loader"), "ul"),
    (re.compile(r"^Write LBA"), "wl"),
    (re.compile(r"^Read LBA"), "rl"),
    (re.compile(r"^Reset Device"), "rd"),
    (re.compile(r"^Test Device (?:OK|failed)"), "td"),
    (re.compile(r"^Change Storage"), "cs"),
    (re.compile(r"^(?:Starting to erase flash|Erasing flash)"), "ef"),
    (re.compile(r"DevNo=\d|^List of rockusb connected|^not found any devices"), "ld"),
    (re.compile(r"^(?:Loading firmware|Start to upgrade firmware|Upgrade firmware)"), "uf"),
    (_STAGE, "uf"),
    (re.compile(r"^Flash Info:"), "rfi"),
    (re.compile(r"^Chip Info:"), "rci"),
    (re.compile(r"^\*+Partition Info"), "ppt"),
    (re.compile(r"^rkdeveloptool ver "), "-v"),
]
#: Lines only one of the tools prints, to name the tool of output pasted without its command.
_SIGNATURES = [
    (re.compile(r"rkdeveloptool ver |^not found any devices!|^Did not find any rockusb device|^Found too many "
                r"rockusb devices|^Downloading bootloader|^Opening loader failed|creating comm object failed|"
                r"^Write LBA from file|^Upgrading loader|^Change Storage", re.I), "rkdeveloptool"),
    (re.compile(r"List of rockusb connected|^Rockusb>|^Upgrade Tool v|^Loading firmware|^Start to upgrade firmware|"
                r"^Upgrade firmware ok|^Program (?:Data|Log)|^Using \S*config\.ini|^Not found config\.ini|"
                r"^No found (?:any )?rockusb|Mode=(?:Maskrom|Loader)|^Command Line:|Select input DevNo", re.I),
     "upgrade_tool"),
    (_STAGE, "upgrade_tool"),
]


@dataclasses.dataclass
class Failure:
    """A command (or an upgrade_tool stage) that failed, with the tool's own words for it."""

    command: str | None
    words: str


@dataclasses.dataclass
class Step:
    """One command's run: the command line (when there was one), the output and what it says.

    ``command`` is the tool's subcommand in lower case ("db", "wl", "uf", "ld" ...); for output
    without its command line, the command its lines belong to, or None when they do not say.
    """

    command: str | None = None
    tool: str | None = None
    args: str = ""
    lines: list[str] = dataclasses.field(default_factory=list)
    devices: list[RockusbDevice] = dataclasses.field(default_factory=list)
    listed: int | None = None  # upgrade_tool's "List of rockusb connected(N)"
    found_none: str | None = None  # the tool's words when its last look found no device
    progress: int | None = None  # the last NN of a "(NN%)" progress line
    stages: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (stage, Start|Success|Fail)
    failures: list[Failure] = dataclasses.field(default_factory=list)
    succeeded: str | None = None  # the line that says the command worked
    ok: bool | None = None  # True, False, or None when the output does not say

    @property
    def words(self) -> str:
        """All failure words of this step, one line each."""
        return "\n".join(f.words for f in self.failures)

    @property
    def failed_stage(self) -> str | None:
        return next((stage for stage, state in self.stages if state == "Fail"), None)

    def analyse(self, *, ended: bool) -> Step:
        """Read ``lines``: devices, progress, stages, failures and the outcome.

        ``ended``: the command is known to have finished (the driver's run exited, or another
        command followed in a transcript), so progress short of 100 % or stages without a result
        mean it stopped there; otherwise such a step is left undecided.
        """
        console: list[str] = []  # failure lines not inside a failed upgrade_tool stage
        first_console = None
        detail: list[str] = []  # what a running stage printed: log errors, the last progress line
        progress_line = None
        listing = None  # "devices" or "none": what the last look for devices found
        failures: list[tuple[int, Failure]] = []
        uf_ok = False
        for index, line in enumerate(self.lines):
            device = _DEVICE_LINE.search(line)
            if device:
                self.devices.append(RockusbDevice(
                    devno=int(device["devno"]), vid=int(device["vid"], 16), pid=int(device["pid"], 16),
                    location=device["location"], mode=device["mode"], serial=device["serial"]))
                listing, self.found_none = "devices", None
                continue
            listed = _LISTED.search(line)
            if listed:
                if listed[1] is not None:
                    self.listed = int(listed[1])
                    if self.listed == 0:
                        listing, self.found_none = "none", line
                continue
            stage = _STAGE.match(line)
            if stage:
                self.stages.append((stage["stage"], stage["state"]))
                if stage["state"] == "Fail":
                    failures.append((index, Failure(stage["stage"], "\n".join([*detail, line]))))
                detail = []
                continue
            if _LOG_ERROR.match(line):
                detail.append(line)
                continue
            percent = _PROGRESS.search(line)
            if percent:
                self.progress, progress_line = int(percent[1]), line
                detail = [d for d in detail if not _PROGRESS.search(d)] + [line]
            if _UF_OK in line:
                uf_ok = True
            if _NONE_FOUND.search(line):
                listing, self.found_none = "none", line
                if self.command in QUERY_COMMANDS:
                    continue  # decided by the last look, below
            if _FAILED.search(line) and not _NOT_A_FAILURE.match(line):
                if first_console is None:
                    first_console = index
                    if self.progress is not None and self.progress < 100:
                        console.append(progress_line)  # where it stopped, in its own words
                console.append(line)
            elif _SUCCEEDED.search(line) and not percent:
                self.succeeded = line
            elif percent and self.progress == 100:
                self.succeeded = line
        if self.command in QUERY_COMMANDS and listing == "none":
            first_console = -1 if first_console is None else first_console
            console.insert(0, self.found_none)
        if console:
            failures.append((first_console, Failure(self.command, "\n".join(console))))
        stopped = ended and not failures and not uf_ok
        if stopped and self.progress is not None and self.progress < 100 and not self.stages:
            failures.append((len(self.lines), Failure(self.command, progress_line)))
        elif stopped and self.stages and self.stages[-1][1] != "Fail" and self.command == "uf":
            last = self.stages[-1]
            failures.append((len(self.lines), Failure(last[0], f"{last[0]} {last[1]}")))
        self.failures = [f for _, f in sorted(failures, key=lambda pair: pair[0])]
        if self.failures:
            self.ok = False
        elif self.command == "uf":
            self.ok = True if uf_ok else None
            self.succeeded = next((line for line in self.lines if _UF_OK in line), None)
        elif self.stages:
            self.ok = True if self.stages[-1][1] == "Success" else None
        elif listing == "devices":
            self.ok = True
        elif self.succeeded is not None and (self.progress is None or self.progress == 100):
            self.ok = True
        return self


def _prepare(text: str | bytes) -> list[str]:
    """Cleaned lines without leading timestamps, markdown quote marks and indentation."""
    out = []
    for line in clean_lines(clean(text)):
        line = line.strip()
        line = re.sub(r"^>+\s*(?=\S)", "", line) if not line.lower().startswith("rockusb>") else line
        line = _TIMESTAMP.sub("", line, count=1).strip() if not _SYSLOG.match(line) else line
        out.append(line)
    return out


def _infer(line: str) -> str | None:
    return next((command for pattern, command in _INFERRED if pattern.search(line)), None)


def _significant(line: str) -> bool:
    return bool(_DEVICE_LINE.search(line) or _FAILED.search(line) or _SUCCEEDED.search(line) or _STAGE.match(line))


def _tool_of(lines: list[str]) -> str | None:
    tool = None
    for line in lines:
        for pattern, name in _SIGNATURES:
            if pattern.search(line):
                tool = name
    return tool


def read_output(output: str | bytes, command: str) -> Step:
    """One run of ``command`` (its output as the driver got it, no command line): the analysed step."""
    lines = [line for line in _prepare(output) if line]
    return Step(command=command, tool=_tool_of(lines), lines=lines).analyse(ended=True)


def read_transcript(text: str | bytes) -> list[Step]:
    """A transcript as a user pastes it, split into steps, each analysed.

    A step starts at each command line of either tool (after any shell prompt, ``sudo`` or path),
    at each command typed at upgrade_tool's ``Rockusb>`` prompt, and at another program's command
    line (whose output is read as output pasted without its command). Output without a command
    line is split where its lines start to speak of another command. Kernel log lines (syslog,
    dmesg) and markdown fences are skipped: they are not the tools' words.
    """
    steps: list[Step] = []
    current: Step | None = None

    def start(step: Step) -> Step:
        steps.append(step)
        return step

    for line in _prepare(text):
        if not line or _FENCE.match(line) or _SYSLOG.match(line):
            continue
        prompt = _ROCKUSB_PROMPT.match(line)
        command = _TOOL_COMMAND.match(line) if not prompt else None
        if prompt:
            args = prompt["args"].split()
            if args:
                current = start(Step(command=args[0].lower(), tool="upgrade_tool", args=" ".join(args[1:])))
            continue
        if command:
            args = (command["args"] or "").split()
            word = args[0].lower() if args else ""
            prompted = command["prompt"] or command["sudo"] or command["path"]
            if (not prompted and word and word not in KNOWN_COMMANDS) or (
                    prompted and word and (word == "ver" or not re.fullmatch(r"-{0,2}[a-z]+", word))):
                command = None  # the tool's name in its own output ("rkdeveloptool ver 1.32") or in prose
        if command:
            tool = command["tool"].lower()
            name = args[0].lower() if args else ("ld" if tool == "upgrade_tool" else "")  # bare upgrade_tool scans
            current = start(Step(command=name, tool=tool, args=" ".join(args[1:])))
            continue
        if _PROMPT.match(line) or _SHELL_COMMAND.match(line):
            current = None  # another program: what follows is read as output without its command
            continue
        if current is None or current.tool is None:
            inferred = _infer(line)
            if current is None or (inferred and inferred != current.command and (
                    current.command is not None or any(_significant(seen) for seen in current.lines))):
                current = start(Step(command=inferred))
            elif inferred and current.command is None:
                current.command = inferred
        current.lines.append(line)
    for index, step in enumerate(steps):
        if step.tool is None:
            step.tool = _tool_of(step.lines)
        step.analyse(ended=index < len(steps) - 1)
    return steps


def parse_transcript(text: str | bytes) -> dict:
    """What a pasted rkdeveloptool or upgrade_tool transcript says, as plain data (the JSON of
    ``hil parse flash-tool``):

    - ``tool``: "rkdeveloptool", "upgrade_tool", or None when nothing names either;
    - ``devices``: each rockusb device listed (``vid``/``pid`` as "0x2207", ``location`` and
      ``mode`` as printed), once each, in the order first listed;
    - ``failures``: each failed command (or upgrade_tool stage) with the tool's words, in order;
    - ``ok``: whether the last operation succeeded, None when its output does not say (a ``uf``
      cut off after "Loading firmware...", an ``rd`` pasted without its output). A listing
      (``ld``, ``-v``, upgrade_tool's start-up scan) is an operation only when it found no device;
      a transcript of listings alone is ok when the last one listed a device.
    """
    steps = read_transcript(text)
    devices, seen = [], set()
    for step in steps:
        for d in step.devices:
            entry = {"vid": f"0x{d.vid:04x}", "pid": f"0x{d.pid:04x}", "location": d.location, "mode": d.mode}
            key = tuple(entry.values())
            if key not in seen:
                seen.add(key)
                devices.append(entry)
    # the last operation: a command that acts on the board, or a look for devices that found none;
    # only when there is none, the last listing that says something
    operations = [s for s in steps if (s.command is not None and s.command not in QUERY_COMMANDS) or s.ok is False]
    listings = [s for s in steps if s.command in QUERY_COMMANDS and s.ok is not None]
    last = (operations or listings or [None])[-1]
    tool = next((s.tool for s in reversed(steps) if s.tool), None)
    return {
        "tool": tool,
        "devices": devices,
        "failures": [{"command": f.command, "words": f.words} for s in steps for f in s.failures],
        "ok": last.ok if last else None,
    }


def main(path: str) -> int:
    """``hil parse flash-tool FILE``: print ``parse_transcript`` of the file as JSON (``-`` = stdin);
    a warning on stderr when nothing in it is output of either tool."""
    data = read_capture(path)
    if data is None:
        return 2
    out = parse_transcript(data)
    if out["tool"] is None and not out["devices"] and not out["failures"] and out["ok"] is None:
        name = capture_name(path)
        print(f"warning: {name} holds no rkdeveloptool or upgrade_tool command or output that is recognised "
              "(no 'rkdeveloptool'/'upgrade_tool' command line, 'Rockusb>' prompt, 'DevNo=' device line or "
              "message of either tool); every value in the JSON is empty", file=sys.stderr)
    print(json.dumps(out, indent=2))
    return 0


def parse_ld(output: str | bytes) -> list[RockusbDevice]:
    """Devices listed by ``rkdeveloptool ld`` or ``upgrade_tool ld``; [] when there are none."""
    text = clean(output)
    step = read_output(text, "ld")
    if step.devices:
        return step.devices
    if step.found_none is not None:
        return []
    raise ToolFailed("'ld' printed neither devices nor 'not found any devices!': the tool did not run "
                     "properly (wrong program under that name, or libusb failed to initialise)", output=text)


def select_rk3576(devices: list[RockusbDevice], *, output: str = "") -> RockusbDevice:
    """The single RK3576 rockusb device; the tools have no option to pick one of several."""
    if not devices:
        raise NoLoaderDevice(f"no rockusb device ({RK_VID:04x}:{RK3576_PID:04x}) found: {NOT_IN_LOADER_HINT}",
                             output=output)
    if len(devices) > 1:
        listed = ", ".join(f"{d.usb_id} {d.soc} at LocationID {d.location} ({d.mode})" for d in devices)
        raise TooManyDevices(
            f"{len(devices)} rockusb devices on this host ({listed}); rkdeveloptool and upgrade_tool have no "
            "option to choose one and refuse to work: keep only one board per host in loader mode at a time "
            "(serialise flashing per exporter) or move boards to separate hosts", output=output)
    device = devices[0]
    if (device.vid, device.pid) != (RK_VID, RK3576_PID):
        raise WrongSoC(
            f"the rockusb device is {device.usb_id} ({device.soc}), not an RK3576 "
            f"({RK_VID:04x}:{RK3576_PID:04x}): wrong board on this place, or its USB cable goes to another board",
            output=output)
    if device.mode not in ("Maskrom", "Loader"):
        raise ToolFailed(f"the RK3576 is in an unknown rockusb mode ({device.mode!r}): power-cycle it into "
                         "Maskrom", output=output)
    return device


def usb_port_of_path(path: str | None) -> int | None:
    """The last port number in a sysfs USB device name such as ``1-3.2`` (None if not a port path)."""
    if not path or "-" not in path:
        return None
    try:
        return int(path.rsplit("-", 1)[1].split(".")[-1])
    except ValueError:
        return None


def check_location(device: RockusbDevice, busnum: int | None, path: str | None, *, output: str = "") -> None:
    """Fail if the device rkdeveloptool sees is not at the USB port of the target's loader resource.

    rkdeveloptool cannot be pointed at a device, so this is how a flash is kept off another board
    that happens to be the only one in loader mode on a shared host.
    """
    port = usb_port_of_path(path)
    if busnum is None or port is None:
        return  # the resource does not know where the device is (yet); nothing to compare
    bus, dev_port = device.bus_port()
    if (bus, dev_port) != (busnum, port):
        raise WrongDevice(
            f"rkdeveloptool sees the rockusb device at bus {bus} port {dev_port} (LocationID {device.location}), "
            f"but this target's loader is at bus {busnum} path {path}: another board on this host is in loader "
            "mode and this one is not; it would be flashed instead", output=output)


# --- argument lists ----------------------------------------------------------------------
def ld_args() -> list[str]:
    return ["ld"]


def version_args() -> list[str]:
    return ["-v"]


def db_args(loader: str) -> list[str]:
    return ["db", loader]


def cs_args(storage: str) -> list[str]:
    try:
        return ["cs", str(STORAGE_CODES[storage])]
    except KeyError:
        raise ValueError(f"unknown storage {storage!r}; one of {', '.join(STORAGE_CODES)}") from None


def wl_args(image: str, lba: int = 0) -> list[str]:
    return ["wl", str(lba), image]


def rd_args() -> list[str]:
    return ["rd"]


def uf_args(image: str) -> list[str]:
    return ["uf", image]


# --- rkdeveloptool results ---------------------------------------------------------------
def _raise_common_failure(words: str, command: str, output: str) -> None:
    """Raise for a failure any rkdeveloptool command can report before doing its own work.

    ``words`` are the failure lines ``read_output`` found; ``output`` goes into the error."""
    if "Did not find any rockusb device" in words or "No found any rockusb device" in words:
        raise NoLoaderDevice(f"'{command}': no rockusb device: {NOT_IN_LOADER_HINT}", output=output)
    if "Found too many rockusb devices" in words:
        raise TooManyDevices(f"'{command}': more than one rockusb device on this host and rkdeveloptool cannot "
                             "choose: keep only one board per host in loader mode at a time", output=output)
    if re.search(r"creating comm(?:unication)? object failed", words, re.I) or \
            "Getting information about rockusb device failed" in words:
        raise UsbAccessError(
            f"'{command}': the tool found the device but could not open it: no permission on the USB device "
            "(install the rockusb udev rule, e.g. 99-rk-rockusb.rules, or run as a user with access) or another "
            "rkdeveloptool/upgrade_tool holds it", output=output)
    if re.search(r"(?:does|did) not support this operation", words, re.I):
        if command.startswith("db"):
            why = "the board is in Loader mode (U-Boot rockusb) and db only works in Maskrom"
        else:
            why = "the board is in Maskrom and needs the loader downloaded (db) first"
        raise WrongMode(f"'{command}': the device refused the command: {why}", output=output)


def check_db(output: str | bytes, loader: str = "the loader") -> None:
    """``db <loader>``: the BootROM runs the DRAM init and usbplug from the loader file."""
    text = clean(output)
    step = read_output(text, "db")
    if step.ok:
        return
    if "Opening loader failed" in step.words:
        raise LoaderFileError(
            f"rkdeveloptool could not read {loader} as a Rockchip loader: wrong path, or not a packed loader "
            "(use rk3576_spl_loader_v*.bin from rkbin, not idbloader.img or u-boot.itb)", output=text)
    _raise_common_failure(step.words, "db", text)
    if "Downloading bootloader failed!" in step.words:
        raise LoaderDownloadFailed(
            f"the board did not accept {loader}: it is not the loader for this SoC (an RK3576 needs "
            "rk3576_spl_loader_v*.bin) or DRAM init failed; power-cycle into Maskrom and retry with the "
            "right file", output=text)
    raise ToolFailed("'db' printed no result: unexpected rkdeveloptool output", output=text)


def check_cs(output: str | bytes, storage: str) -> None:
    """``cs <code>``: select the storage that ``wl`` writes to."""
    text = clean(output)
    step = read_output(text, "cs")
    if step.ok:
        return
    command = " ".join(cs_args(storage))
    _raise_common_failure(step.words, command, text)
    raise StorageSelectFailed(
        f"the loader could not switch to {storage} ('{command}'): the board has no {storage}, or the loader "
        "running on it cannot select storage (U-Boot rockusb in Loader mode; set storage to null to write to "
        "the storage it exposes), or this rkdeveloptool predates 'cs' (needs 1.32)", output=text)


def write_progress(output: str | bytes) -> int | None:
    """The last ``Write LBA from file (NN%)`` value, None if there was none."""
    return read_output(output, "wl").progress


def check_wl(output: str | bytes) -> None:
    """``wl <lba> <file>``: there is no success line, only progress that must reach 100 %."""
    text = clean(output)
    step = read_output(text, "wl")
    if step.ok:
        return
    opened = _OPEN_FAILED.search(step.words)
    if opened:
        code, path = int(opened[1]), opened[2].strip()
        reason = os.strerror(code) if code > 0 else "unknown error"
        where = ("the file is missing there" if code == errnomod.ENOENT else
                 "the tool's user cannot read it" if code == errnomod.EACCES else reason)
        raise ImageOpenFailed(
            f"rkdeveloptool could not open the image {path} (errno {code}, {reason}): {where}; with a remote "
            "exporter, check that the copy under /var/cache/labgrid arrived and is readable", output=text)
    _raise_common_failure(step.words, "wl", text)
    if step.failures:
        at = f"at {step.progress}%" if step.progress is not None else "before the first block"
        raise WriteFailed(
            f"writing the image failed {at}: the USB link dropped (cable, hub, board power) or the storage "
            "rejected the write (image larger than the storage, missing or worn eMMC); power-cycle into loader "
            "mode and flash again", output=text)
    raise ToolFailed("'wl' printed no progress: the image is empty or the tool is not rkdeveloptool", output=text)


def check_rd(output: str | bytes) -> None:
    """``rd``: leave the loader and boot from storage."""
    text = clean(output)
    step = read_output(text, "rd")
    if step.ok:
        return
    _raise_common_failure(step.words, "rd", text)
    if "Reset Device failed!" in step.words:
        raise ResetFailed("the board did not accept the reset command: power-cycle it to boot the new image",
                          output=text)
    raise ToolFailed("'rd' printed no result: unexpected tool output", output=text)


def parse_version(output: str | bytes) -> str:
    """``rkdeveloptool -v`` -> "1.32"."""
    text = clean(output)
    match = _VERSION.search(text)
    if not match:
        raise ToolFailed("'-v' did not print 'rkdeveloptool ver ...': the program is not rkdeveloptool",
                         output=text)
    return match[1]


# --- upgrade_tool results ----------------------------------------------------------------
UF_STAGE_HINTS = {
    "Download Boot": "the loader inside update.img does not start on this board: the package was built for "
                     "another SoC, or the USB link is unreliable",
    "Wait For Maskrom": "the board did not come back on USB after the loader started: cable or hub, or the "
                        "loader's DRAM init failed",
    "Wait For Loader": "the board did not come back on USB in Loader mode: cable or hub, or the loader crashed",
    "Test Device": "the board does not answer on USB: cable, hub or a crashed loader; power-cycle into Maskrom",
    "Check Chip": "update.img is for another SoC than this board (an RK3576 package is needed)",
    "Get FlashInfo": "the loader found no usable storage: eMMC missing, dead, or not supported by this loader",
    "Prepare IDB": "preparing the ID block (boot loader area) failed: the loader in update.img does not match "
                   "the storage",
    "Download IDB": "writing the ID block (boot loader area) failed: storage error or USB link dropped",
    "Download Firmware": "writing the partitions failed: USB link dropped, or an image in the package is larger "
                         "than its partition in parameter.txt",
}


def uf_stages(output: str | bytes) -> list[tuple[str, str]]:
    """(stage, "Start" | "Success" | "Fail") in the order upgrade_tool printed them."""
    return read_output(output, "uf").stages


def check_uf(output: str | bytes) -> None:
    """``upgrade_tool uf update.img``: success only with ``Upgrade firmware ok.``."""
    text = clean(output)
    step = read_output(text, "uf")
    if step.ok:
        return
    if _NONE_FOUND.search(step.words):
        raise NoLoaderDevice(f"'uf': no rockusb device: {NOT_IN_LOADER_HINT}", output=text)
    failed = step.failed_stage
    if failed:
        at = f" at {step.progress}%" if failed == "Download Firmware" and step.progress is not None else ""
        hint = UF_STAGE_HINTS.get(failed, "see the tool output")
        raise UpgradeFailed(f"upgrade_tool failed in '{failed}'{at}: {hint}", stage=failed, output=text)
    last = step.stages[-1][0] if step.stages else None
    if last:
        raise UpgradeFailed(f"upgrade_tool stopped after '{last}' without 'Upgrade firmware ok.': it was "
                            "interrupted or lost the board; power-cycle into loader mode and flash again",
                            stage=last, output=text)
    if any(line.startswith("Loading firmware") for line in step.lines):
        raise UpgradeFailed("upgrade_tool could not load the firmware package: the file is not a Rockchip "
                            "update.img (RKFW), or it is truncated", stage="Loading firmware", output=text)
    raise ToolFailed("'uf' printed no stage: unexpected upgrade_tool output", output=text)


# --- images ------------------------------------------------------------------------------
def gpt_partition(head: bytes, name: str) -> tuple[int, int] | None:
    """First and last LBA of the GPT partition called ``name``, from the image's first sectors.

    ``head`` should hold at least LBA 0..33 (protective MBR, header, 128 entries). None when
    there is no GPT there or no such partition.
    """
    header = head[SECTOR:2 * SECTOR]
    if len(header) < 92 or header[:8] != b"EFI PART":
        return None
    entries_lba, count, size = struct.unpack_from("<QII", header, 72)
    start = entries_lba * SECTOR
    for index in range(count):
        entry = head[start + index * size:start + (index + 1) * size]
        if len(entry) < 128:
            break
        if entry[:16] == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        label = entry[56:128].decode("utf-16-le", errors="replace").split("\x00", 1)[0]
        if label == name:
            return first, last
    return None


def userdata_fate(head: bytes, image_size: int) -> str:
    """What ``wl 0 <image>`` does to the board's userdata partition.

    "overwritten": the partition starts inside the image, so the image's content replaces it;
    "kept": it starts after the image ends, so the old data stays (if the layout is unchanged);
    "unknown": the image has no GPT with a userdata partition.
    """
    extent = gpt_partition(head, "userdata")
    if extent is None:
        return "unknown"
    return "overwritten" if extent[0] * SECTOR < image_size else "kept"
