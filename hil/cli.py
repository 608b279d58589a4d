"""The ``hil`` command: the virtual bench (``hil twin``), the farm (``hil farm``), results (``hil report``,
``hil history``, ``hil baseline``), golden answers (``hil golden``), log parsing (``hil parse``)
and what model, firmware and library files say (``hil inspect``)."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request

from hil.paths import twin_demo_dir, twin_models_dir
from hil.twin import bench
from hil.twin.board import FAULT_ARGUMENTS, FAULTS, FaultArgumentError, check_fault_value, fault_takes


def _twin_build(args) -> int:
    from hil.twin import build

    record = build.build(force=args.force)
    if record["up_to_date"]:
        print(f"twin images up to date ({len(record['images'])} images, kernel {record['kernel_release']})")
    else:
        print(f"built {len(record['images'])} twin images in {record['seconds']} s (kernel {record['kernel_release']})")
    print(f"SDK demo build: {twin_demo_dir()}\nmodels (model zoo names): {twin_models_dir()}")
    return 0


def _config(args) -> bench.BenchConfig:
    return bench.BenchConfig(boards=args.boards, base_port=args.base_port, timescale=args.timescale,
                             image=args.image, reflash=args.reflash)


def _twin_up(args) -> int:
    state = bench.up(_config(args))
    print(f"bench up: {state['url']} (pid {state['pid']})")
    for n, p in state["boards"].items():
        print(f"  board {n}: power {state['url']}/outlet/{n}  console {state['host']}:{p['console']}  "
              f"ssh {state['host']}:{p['ssh']}")
    if args.power_on:
        for n in state["boards"]:
            bench.get(f"{state['url']}/outlet/{n}/1")
        print("  boards powered on")
    return 0


def _twin_down(_args) -> int:
    print("bench stopped" if bench.down() else "no bench was running")
    return 0


def _twin_status(args) -> int:
    st = bench.status()
    if st is None:
        print("no bench is running")
        return 3
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"bench {st['url']} (pid {st['pid']}, timescale {st['timescale']:g})")
    for b in st["boards"]:
        faults = ", ".join(f"{k}={v}" for k, v in b["faults"].items()) or "none"
        print(f"  board {b['index']}: power {'on' if b['power'] else 'off'}, {b['mode']}, image {b['image']}, "
              f"console :{b['console']['port']}, ssh :{b['ssh']['port']}, boots {b['boots']}, faults {faults}")
    return 0


def _twin_fault(args) -> int:
    # the argument is checked here as the bench checks it, so a wrong one is refused before any bench is asked
    if args.fault == "clear":
        if args.value is not None and args.value not in FAULTS:
            print(f"error: 'clear' takes a fault to clear, or none for all; {args.value!r} is no fault "
                  f"(faults: {', '.join(sorted(FAULTS))})", file=sys.stderr)
            return 2
    else:
        try:
            value = check_fault_value(args.fault, args.value)
        except FaultArgumentError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    st = bench.read_state()
    if st is None:
        print("no bench is running: start one with 'hil twin up'", file=sys.stderr)
        return 3
    if args.fault == "clear":
        url, method, body = f"{st['url']}/fault/{args.board}" + (f"/{args.value}" if args.value else ""), "DELETE", None
    else:
        url, method, body = f"{st['url']}/fault/{args.board}/{args.fault}", "PUT", value.encode()
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            print(f"board {args.board} faults: {json.loads(resp.read()) or 'none'}")
    except urllib.error.HTTPError as e:
        print(f"error: {e.read().decode().strip()}", file=sys.stderr)
        return 2
    return 0


# hil parse NAME FILE: each parser module's main(path) reads FILE (or - for stdin) and prints JSON
PARSERS = {
    "rkllm-log": ("hil.rockchip.rkllm_log", "an RKLLM runtime log (a demo run or a serial capture) as one JSON object"),
    "npu": ("hil.rockchip.rknpu", "a capture of the rknpu driver's version, load and freq files (prompts and cat "
                                  "commands or bare lines) as one JSON object"),
    "boot-log": ("hil.rockchip.bootlog", "a console capture of one or more boots (DDR/SPL banners, U-Boot, kernel, "
                                         "init, login prompt) as one JSON object: the stages each boot reached, its "
                                         "panic and rknpu probe lines, and the last lines"),
    "flash-tool": ("hil.rockchip.flashtools", "an rkdeveloptool or upgrade_tool transcript (prompts, commands, menus, "
                                              "timestamps) as JSON: tool, devices listed, failures in the tool's "
                                              "words, and whether the last operation succeeded"),
    "rknn-benchmark": ("hil.rockchip.rknn_benchmark", "the RKNPU2 SDK's rknn_benchmark output (a serial or SSH "
                                                      "capture) as one JSON object: versions, memory, tensors, "
                                                      "per-loop and average times, Top5, errors, and whether the run "
                                                      "completed"),
    "zoo-demo": ("hil.rockchip.zoo_demo", "an rknn_model_zoo C demo's output (rknn_yolov5_demo, rknn_mobilenet_demo, "
                                          "...; a serial or SSH capture) as one JSON object: versions, tensors, "
                                          "detections or classes, errors, and whether the run completed"),
    "stress": ("hil.rockchip.stress", "a capture of stressapptest and memtester (one tool or both on one console, "
                                      "as a soak runs them) as JSON: each tool's first run, its verdict, throughput "
                                      "or per-test counts, fault lines and how far it got"),
    "proc-stat": ("hil.rockchip.cpustat", "two or more /proc/stat snapshots as JSON: CPU utilisation per core and "
                                          "per RK3576 cluster between the first and the last"),
}


def _parse(args) -> int:
    import importlib

    return importlib.import_module(PARSERS[args.parse_command][0]).main(args.file)


def _inspect(args) -> int:
    from hil.rockchip import inspect

    return inspect.main(args.files)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hil", description="RK3576 hardware-in-the-loop tools")
    sub = p.add_subparsers(dest="command", required=True)
    twin = sub.add_parser("twin", help="the virtual RK3576 bench").add_subparsers(dest="twin_command", required=True)

    b = twin.add_parser("build", help="build the twin's firmware images into the cache")
    b.add_argument("--force", action="store_true", help="rebuild even when inputs are unchanged")
    b.set_defaults(func=_twin_build)

    u = twin.add_parser("up", help="start the bench in the background")
    u.add_argument("--boards", type=int, default=1)
    u.add_argument("--base-port", type=int, default=bench.DEFAULT_BASE_PORT)
    u.add_argument("--timescale", type=float, default=1.0,
                   help="factor on the stand-ins' waits (printed figures stay at board values)")
    u.add_argument("--image", default=bench.DEFAULT_IMAGE, help="image for boards whose eMMC is empty")
    u.add_argument("--reflash", action="store_true", help="flash --image into every board and wipe /userdata")
    u.add_argument("--power-on", action="store_true", help="switch every outlet on once the bench is up")
    u.set_defaults(func=_twin_up)

    d = twin.add_parser("down", help="stop the bench, leaving no process behind")
    d.set_defaults(func=_twin_down)

    s = twin.add_parser("status", help="what the bench runs")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_twin_status)

    f = twin.add_parser("fault", help="switch a fault on a board on, or clear faults",
                        description="Switch a fault on; 'clear [NAME]' clears one fault, or all. VALUE: " + "; ".join(
                            f"{name} takes {fault_takes(name)}" for name in sorted(FAULTS)
                            if FAULT_ARGUMENTS[name] is not None) + "; the others take none (or 1).")
    f.add_argument("board", type=int)
    f.add_argument("fault", choices=sorted(FAULTS) + ["clear"])
    f.add_argument("value", nargs="?", default=None,
                   help="percent for decode-slow and serial-garbage, seconds for spontaneous-reboot, the fault's "
                        "name after clear")
    f.set_defaults(func=_twin_fault)

    parse = sub.add_parser("parse", help="board logs as JSON").add_subparsers(dest="parse_command", required=True)
    for name, (_, what) in PARSERS.items():
        r = parse.add_parser(name, help=what)
        r.add_argument("file", help="the file, or - for stdin")
        r.set_defaults(func=_parse)

    i = sub.add_parser("inspect", help="what model, firmware and runtime library files say about themselves, as JSON",
                       description="Read .rknn, .rkllm, update.img (RKFW) and librknnrt/librkllmrt files from their "
                                   "headers and footers (never the whole file) and print one JSON object per file. "
                                   "A file that cannot be read prints {file, error} and the exit status is 1.")
    i.add_argument("files", nargs="+", metavar="FILE", help="the files; their kind is found from their content")
    i.set_defaults(func=_inspect)

    from hil.farm import cli as farmcli
    from hil.kit import goldencmd
    from hil.measure import historycmd
    from hil.measure.report import command as reportcmd

    farmcli.add_commands(sub)
    reportcmd.add_commands(sub)
    historycmd.add_commands(sub)
    goldencmd.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from hil.kit.images import ManifestError
    from hil.twin.aptfetch import AptError
    from hil.twin.build import BuildError
    from hil.twin.surface import SurfaceError

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (bench.BenchError, AptError, BuildError, SurfaceError, ManifestError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
