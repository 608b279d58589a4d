import abc
import contextlib


class FlashProtocol(abc.ABC):
    """Write a whole firmware image to a board held in Rockchip's USB loader mode.

    Implemented for rkdeveloptool, upgrade_tool and the virtual bench's flash service, so
    the strategy flashes every kind of board the same way.
    """

    @abc.abstractmethod
    def await_loader(self, timeout: float = 30.0) -> str:
        """Wait until the board shows up in loader mode; returns "Maskrom" or "Loader"."""
        raise NotImplementedError

    @abc.abstractmethod
    def flash(self, filename: str, *, wipe_userdata: bool = False) -> None:
        """Write the image from the start of the storage (``wl 0``)."""
        raise NotImplementedError

    @abc.abstractmethod
    def reset(self) -> None:
        """Leave the loader and boot the board (``rd``)."""
        raise NotImplementedError

    def host_lock(self):
        """A context held from entering loader mode to the reset out of it: for tools that must
        not see two boards of one host in loader mode at once (``hil.lab.flashlock``)."""
        return contextlib.nullcontext()
