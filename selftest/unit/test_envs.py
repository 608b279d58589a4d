"""The environments load in labgrid as committed, and the suite documents its options."""

from __future__ import annotations

import subprocess
import sys

from labgrid import Environment

from hil.paths import REPO


def test_real_board_template_loads_and_binds_every_driver():
    target = Environment(str(REPO / "env" / "rk3576.yaml")).get_target("main")
    try:
        strategy = target.get_driver("RK3576Strategy", activate=False)
        assert type(strategy.flasher).__name__ == "RKDeveloptoolDriver"
        assert type(strategy.maskrom).__name__ == "HIDRelayDriver"
        assert type(strategy.ssh).__name__ == "ParamikoSSHDriver"
        assert type(strategy.uboot).__name__ == "UBootDriver"
        # tests ask for CommandProtocol: SSH must win over the serial shell
        assert type(target.get_driver("CommandProtocol", activate=False)).__name__ == "ParamikoSSHDriver"
        assert type(target.get_driver("NPUDriver", activate=False).command).__name__ == "ParamikoSSHDriver"
    finally:
        target.cleanup()


def test_env_files_keep_secrets_out_of_the_real_board_template():
    text = (REPO / "env" / "rk3576.yaml").read_text()
    assert "password:" not in text.replace("#   password:", "")


def test_suite_options_are_in_pytest_help():
    out = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=REPO, capture_output=True, text=True,
                         timeout=120).stdout
    for option in ("--image=NAME", "--no-flash", "--model=NAME", "--models-dir=DIR", "--limits=FILE"):
        assert option in out, f"{option} missing from pytest --help"
    assert "RK3576 qualification suite" in out
