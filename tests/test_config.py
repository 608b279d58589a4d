"""Configuration checks, before any inference: each mismatch is its own named failure."""

import pytest

from hil.rockchip.checks import CHECKS


@pytest.mark.parametrize("check", CHECKS)
def test_configuration(check, config_problems, suite_config, record_property):
    found = [(kind, p) for kind, problems in config_problems.items() for p in problems if p.check == check]
    record_property("model", suite_config.model.name)
    assert not found, "; ".join(f"{p.message} (blocks the {kind} runs)" for kind, p in found)
