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


def _collected(env_file, cwd) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--lg-env", str(env_file), "--collect-only", "-q"],
                          cwd=cwd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return sorted(line for line in proc.stdout.splitlines() if "::" in line)


def test_an_env_file_outside_the_project_collects_exactly_the_suite(tmp_path):
    """Labs keep env files elsewhere: the run is still the suite's, rooted in the project."""
    outside = tmp_path / "etc-labgrid" / "rk3576-01.yaml"
    outside.parent.mkdir()
    outside.write_text((REPO / "env" / "twin.yaml").read_text())
    suite = _collected(REPO / "env" / "twin.yaml", REPO)
    assert suite and all(n.startswith("tests/") for n in suite), suite[:5]
    assert _collected(outside, REPO) == suite
    assert _collected(outside, REPO / "selftest") == suite
    assert _collected(REPO / "env" / "twin.yaml", REPO / "selftest") == suite
