"""Lab faults: a lab component failed (the PDU, the console server, the exporter), not the board.

A qualification must never call a board bad because its power switch hung, so these are
raised as their own type, with the component named, and the suite records them as lab
faults (results, JUnit, report) instead of test failures.
"""

from __future__ import annotations


class LabFault(RuntimeError):
    """A lab component failed; ``component`` says which (``PDU``, ``console server``, ...)."""

    def __init__(self, component: str, message: str) -> None:
        self.component = component
        super().__init__(f"lab fault ({component}): {message}")
