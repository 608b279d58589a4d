"""Provenance: what a run's figures were measured on, recorded with them.

A figure means nothing without the board, image, kernel, RKNPU driver, runtimes, model,
clocks and temperature it came from; a baseline is only comparable when these match.
``host_side`` reads what the options and files on the host say, ``board_side`` what the
board says of itself; ``Provenance`` collects both and what is learned later (the frequency
lock), and hands out what is new since it was last asked, so each addition rides on the next
test report to the process that writes the run folder. Gathering never fails a test: what
cannot be read is left out, with a warning in the log.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from hil.lab.deploy import sha256_file

log = logging.getLogger("rk3576-hil.provenance")

BOARD_COMMANDS = {
    "kernel": "uname -r",
    "kernel_version": "uname -v",
    "os_release": ". /etc/os-release && echo \"$PRETTY_NAME\"",
    "board_serial": "cat /proc/device-tree/serial-number 2>/dev/null || sed -n 's/^Serial[[:space:]]*: //p' /proc/cpuinfo",
    "board_model": "tr -d '\\0' < /proc/device-tree/model",
    "memory_total_kb": "sed -n 's/^MemTotal:[[:space:]]*\\([0-9]*\\) kB/\\1/p' /proc/meminfo",
}


class Provenance:
    """What this process knows about its run so far, and what it has not reported yet."""

    def __init__(self) -> None:
        self.data: dict = {}
        self._pending: dict = {}

    def update(self, **fields) -> None:
        for key, value in fields.items():
            if value is not None and self.data.get(key) != value:
                self.data[key] = value
                self._pending[key] = value

    def pending(self) -> dict:
        out, self._pending = self._pending, {}
        return out


def files_sha256(files: dict) -> str:
    """One hash over a set of files: sha256 of each file's relative path and sha256, sorted.

    The file hashes are the deploy's (remembered per file), so the model is read once a session."""
    outer = hashlib.sha256()
    for rel in sorted(files):
        outer.update(f"{rel} {sha256_file(files[rel])}\n".encode())
    return outer.hexdigest()


def model_files(model) -> dict:
    """What the model's files say of it (the .rkllm footer, the .rknn container)."""
    out = {"llm": model.llm.name, "rkllm_toolkit_version": model.llm_file.toolkit_version}
    if model.vision_file is not None:
        out.update(vision=model.vision.name, rknn_toolkit_version=model.vision_file.toolkit_version,
                   vision_target_platform=model.vision_file.target_platform, embed_size=model.info.embed_size)
    return out


def host_side(suite_config) -> dict:
    """What the host knows before the board is asked: options, bundle, model, image."""
    runtime = suite_config.runtime
    fields = {
        "board": suite_config.board_id, "board_type": suite_config.board, "place": suite_config.place,
        "model": suite_config.model.name, "model_files": model_files(suite_config.model),
        "rkllm_runtime": runtime.rkllm_runtime, "rknn_runtime": runtime.rknn_runtime,
        "demo_version": runtime.demo_version, "runtime_sources": dict(runtime.sources), "repeat": suite_config.repeat,
        "limits": ["limits/rk3576.yaml", *suite_config.limits_files],
    }
    try:
        fields["model_sha256"] = files_sha256(suite_config.model.files())
    except OSError as e:
        log.warning("model hash: %s", e)
    if suite_config.vision is not None:
        fields["vision_rknn_runtime"] = suite_config.vision.rknn_runtime
        fields["vision_models"] = {m.name: {"file": m.path.name, "target_platform": m.platforms,
                                            "toolkit_version": m.file.toolkit_version,
                                            "published_fps": m.published_fps} for m in suite_config.vision.models}
    if suite_config.firmware is not None:
        fields["image"] = Path(suite_config.firmware.path).name
        fields["firmware"] = suite_config.firmware.to_json()
        fields["flashed"] = suite_config.image_file is not None
    if suite_config.image is not None:
        fields["image"] = suite_config.image.name
        fields["image_manifest"] = suite_config.image.as_dict()
        fields["flashed"] = suite_config.image_file is not None
    return fields


def board_side(shell, npu) -> dict:
    """What the board says of itself (kernel, OS, serial, memory; the NPU driver, temperatures)."""
    fields = {}
    for key, command in BOARD_COMMANDS.items():
        try:
            out = shell.run(command, timeout=10)
            stdout, status = out[0], out[2]
            if status == 0 and stdout and stdout[0].strip():
                fields[key] = stdout[0].strip()
        except Exception as e:  # noqa: BLE001 - provenance is best effort; the tests say what is broken
            log.warning("provenance %s: %s", key, e)
    if npu is not None:
        for key, read in (("rknpu_driver", npu.driver_version), ("temperature_start_c", npu.temperatures)):
            try:
                fields[key] = read()
            except Exception as e:  # noqa: BLE001
                log.warning("provenance %s: %s", key, e)
    return fields
