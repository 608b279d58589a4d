"""labgrid extensions of the project, registered when imported.

List this package in an environment's ``imports:`` by its dotted name (``hil.lab``), never
as a file path, so the classes are registered once even when the suite imports it too.
"""

from hil.lab.flashprotocol import FlashProtocol
from hil.lab.twinflash import TwinFlashDriver, TwinUSBLoader

__all__ = ["FlashProtocol", "TwinFlashDriver", "TwinUSBLoader"]
