"""labgrid extensions of the project, registered when imported.

List this package in an environment's ``imports:`` by its dotted name (``hil.lab``), never
as a file path, so the classes are registered once even when the suite imports it too.
Importing it also bounds labgrid's HTTP power backends in time (``hil.lab.pdu``).
"""

from hil.lab.deploy import DeployError, DeployResult
from hil.lab.flashprotocol import FlashProtocol
from hil.lab.labfault import LabFault
from hil.lab.npu import NPUDriver, NPUProtocol
from hil.lab.paramikossh import ParamikoSSHDriver, SSHError, SSHProcess
from hil.lab.pdu import PDUError, bound_power_backends
from hil.lab.rkdeveloptool import RKDeveloptoolDriver
from hil.lab.rkllmdemo import RKLLMDemoDriver
from hil.lab.rknnbench import RKNNBenchmarkDriver, RKNNToolError
from hil.lab.strategy import RK3576Strategy
from hil.lab.twinflash import TwinFlashDriver, TwinUSBLoader
from hil.lab.upgradetool import UpgradeToolDriver

bound_power_backends()

__all__ = [
    "DeployError",
    "DeployResult",
    "FlashProtocol",
    "LabFault",
    "NPUDriver",
    "NPUProtocol",
    "ParamikoSSHDriver",
    "PDUError",
    "RKDeveloptoolDriver",
    "RK3576Strategy",
    "RKLLMDemoDriver",
    "RKNNBenchmarkDriver",
    "RKNNToolError",
    "SSHError",
    "SSHProcess",
    "TwinFlashDriver",
    "TwinUSBLoader",
    "UpgradeToolDriver",
]
