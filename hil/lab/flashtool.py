"""The shared base of the real flash-tool drivers (rkdeveloptool, upgrade_tool).

Both run a Rockchip command-line tool where the board's rockusb loader is (locally, or over
SSH on an exporter), so they find the tool the same way, bound each run by the same timeouts
and wait for the loader the same way; this module holds that once, and each driver keeps only
what its tool does differently. The virtual bench's TwinFlashDriver runs no tool and its
loader is no labgrid-managed USB resource, so it has none of this.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from typing import Callable, TypeVar

import attr
from labgrid.binding import BindingState
from labgrid.driver import Driver
from labgrid.exceptions import NoResourceFoundError
from labgrid.resource.common import NetworkResource
from labgrid.util.helper import processwrapper

from hil.lab.flashlock import HostFlashLock
from hil.lab.flashprotocol import FlashProtocol
from hil.rockchip import flashtools

#: Short commands (ld, db, cs, rd) never legitimately take long; only the image write does.
SHORT_COMMAND_TIMEOUT = 60.0

T = TypeVar("T")


def retry_for_device(attempt: Callable[[], T], deadline: float, *, interval: float = 0.5) -> T:
    """``attempt()``, again every ``interval`` s while it raises NoLoaderDevice; past ``deadline`` that error stands.

    A board coming into loader mode shows up in steps (USB, udev, the tool, the loader after
    ``db``), so "no device" is worth asking again for a while; any other failure is final.
    """
    while True:
        try:
            return attempt()
        except flashtools.NoLoaderDevice:
            if time.monotonic() > deadline:
                raise
        time.sleep(interval)


def await_loader_resource(driver, timeout: float) -> float:
    """Wait until the driver's USB loader resource is present (and the driver active); the deadline."""
    timeout = float(timeout)  # labgrid's Timeout refuses ints
    deadline = time.monotonic() + timeout
    try:
        driver.target.await_resources([driver.loader], timeout)
    except NoResourceFoundError as e:
        raise flashtools.LoaderTimeout(
            f"no rockusb device appeared for {driver.loader.name or 'the loader'} within {timeout:g} s: "
            f"{flashtools.NOT_IN_LOADER_HINT}") from e
    if driver.state is not BindingState.active:
        # labgrid deactivates a driver whose managed resource vanished (the board left loader mode
        # and came back); the loader is here again, so take this driver back into use
        driver.target.activate(driver)
    return deadline


def run_tool(resource, tool: str, args: list[str], *, timeout: float, verbose: bool = False) -> tuple[int, str]:
    """Run ``tool args`` where ``resource`` is (over SSH for an exported one); (exit status, cleaned output).

    coreutils ``timeout`` bounds the run: processwrapper has no time limit of its own, and a
    stalled USB transfer would otherwise hang the whole session.
    """
    command = [tool, *args]
    if timeout > 0:
        command = ["timeout", "--kill-after=10", f"{timeout:g}", *command]
    where = resource.host if isinstance(resource, NetworkResource) else "this host"
    try:
        output = processwrapper.check_output(resource.wrap_command(command), print_on_silent_log=verbose)
        return 0, flashtools.clean(output)
    except FileNotFoundError as e:
        raise flashtools.ToolMissing(f"{command[0]} is not installed on {where}: install it or set its path "
                                     f"under 'tools:' in the environment") from e
    except subprocess.CalledProcessError as e:
        text = flashtools.clean(e.output or b"")
        name = f"{os.path.basename(tool)} {' '.join(args[:1])}"
        if timeout > 0 and e.returncode in (124, 137):
            raise flashtools.ToolTimeout(
                f"'{name}' did not finish within {timeout:g} s and was stopped: the USB transfer stalled "
                "(cable, hub, board power); power-cycle the board into loader mode and retry", output=text) from e
        if e.returncode in (126, 127):
            raise flashtools.ToolMissing(
                f"'{tool}' could not be run on {where} (exit status {e.returncode}): install it there or set "
                "its path under 'tools:' in the environment", output=text) from e
        return e.returncode, text


@attr.s(eq=False)
class FlashToolDriver(Driver, FlashProtocol):
    """Base of the drivers that flash through a Rockchip tool run where the rockusb loader is.

    Not registered with labgrid: it names no tool. A subclass sets ``tool_name`` and
    implements ``loader_device`` and FlashProtocol's methods.

    Args:
        timeout (float): upper bound in seconds for the long command (the image write); short
            commands get at most ``SHORT_COMMAND_TIMEOUT``; 0 disables both bounds
        lock_timeout (float): how long a flash waits for another of the same host to finish
            (``hil.lab.flashlock``)
    """

    bindings = {"loader": {"RKUSBLoader", "NetworkRKUSBLoader", "TwinUSBLoader"}}

    timeout = attr.ib(default=1800.0, converter=float)
    lock_timeout = attr.ib(default=1800.0, converter=float)

    #: The tool's key under the environment's ``tools:``, and its command name on PATH without one.
    tool_name = ""

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if self.target.env:
            self.tool = self.target.env.config.get_tool(self.tool_name)
        else:
            self.tool = self.tool_name

    def run(self, args: list[str], *, long: bool = False) -> tuple[int, str]:
        """Run the tool with ``args``; (exit status, cleaned output). ``long`` for the image write.

        The long command gets ``timeout`` and its output logged; a short one is cut off sooner,
        so a hung ``ld`` does not hold the session for the whole write's allowance.
        """
        timeout = self.timeout
        if timeout > 0 and not long:
            timeout = min(timeout, SHORT_COMMAND_TIMEOUT)
        return run_tool(self.loader, self.tool, args, timeout=timeout, verbose=long)

    def loader_device(self) -> flashtools.RockusbDevice:
        """The board's rockusb device as the tool lists it, checked to be this target's board."""
        raise NotImplementedError

    def host_lock(self):
        """The flash lock of the host the loader port is on: the tool cannot pick one of two boards."""
        host = self.loader.host if isinstance(self.loader, NetworkResource) else socket.gethostname()
        return HostFlashLock(host, timeout=self.lock_timeout).held(f"target {self.target.name}")

    def wait_for_loader(self, timeout: float) -> flashtools.RockusbDevice:
        """Wait for the loader resource, then until the tool sees the board too; its device.

        udev reports the device before the tool can open it, so the tool is asked again until
        the same deadline.
        """
        deadline = await_loader_resource(self, timeout)
        return retry_for_device(self.loader_device, deadline)
