"""The farm's pure parts: place lists, tags, environments, and how fan-out names a board's test."""

from __future__ import annotations

import pytest

from fixtures.farm import board_nodeid
from hil import farm
from hil.lab.places import PlaceError
from hil.paths import REPO
from hil.suite.env import LabEnv


def test_places_and_tags_parse_and_name_their_mistakes():
    assert farm.parse_places("twin-1, twin-2") == ["twin-1", "twin-2"]
    assert farm.parse_places(None) == []
    with pytest.raises(farm.FarmError, match="listed twice: twin-1"):
        farm.parse_places("twin-1,twin-1")
    assert farm.parse_tags("board=rk3576,rack=3") == {"board": "rk3576", "rack": "3"}
    with pytest.raises(farm.FarmError, match="must be KEY=VALUE"):
        farm.parse_tags("rk3576")


def test_a_farms_mistake_is_a_place_error():
    """fixtures/farm.py stops the run on any PlaceError: the farm's own errors must be among them."""
    assert issubclass(farm.FarmError, PlaceError)


def test_farm_env_takes_its_place_from_lg_place_and_twin_env_does_not():
    assert LabEnv.load(REPO / "env" / "farm.yaml").is_farm
    assert not LabEnv.load(REPO / "env" / "twin.yaml").is_farm
    assert not LabEnv.load(REPO / "env" / "rk3576.yaml").is_farm


def test_coordinator_comes_from_the_command_line_then_the_env_then_lg_coordinator(monkeypatch, tmp_path):
    env = REPO / "env" / "farm.yaml"
    assert LabEnv.load(env).coordinator("10.0.0.5:20408") == "10.0.0.5:20408"
    assert LabEnv.load(env).coordinator() == "127.0.0.1:21001"
    bare = tmp_path / "bare.yaml"
    bare.write_text("targets: {main: {resources: {RemotePlace: {name: !template '$LG_PLACE'}}}}\n")
    monkeypatch.setenv("LG_COORDINATOR", "lab.example:20408")
    assert LabEnv.load(bare).coordinator() == "lab.example:20408"
    monkeypatch.delenv("LG_COORDINATOR")
    assert LabEnv.load(bare).coordinator() == farm.DEFAULT_COORDINATOR


@pytest.mark.parametrize("nodeid, expected", [
    ("tests/test_boot.py::test_boots_to_shell", "tests/test_boot.py::test_boots_to_shell@twin-2"),
    ("tests/test_config.py::test_configuration[embed_size]",
     "tests/test_config.py::test_configuration[embed_size@twin-2]"),
    ("tests/test_boot.py::test_boots_to_shell@twin-2", "tests/test_boot.py::test_boots_to_shell@twin-2"),
], ids=["plain", "parametrized", "named-already"])
def test_fan_out_names_each_boards_test_apart(nodeid, expected):
    """pytest 9 reads everything after '[' as the parameters, so the board goes inside them."""
    assert board_nodeid(nodeid, "twin-2") == expected
    from _pytest.junitxml import mangle_test_address

    assert mangle_test_address(expected)[-1] == expected.split("::")[-1]


def test_farm_env_drives_boards_with_the_twins_drivers():
    """env/farm.yaml is env/twin.yaml with the place from $LG_PLACE: the drivers must not drift apart."""
    main = {name: LabEnv.load(REPO / "env" / name).main for name in ("farm.yaml", "twin.yaml")}
    assert main["farm.yaml"]["drivers"] == main["twin.yaml"]["drivers"]
    farm_opts, twin_opts = main["farm.yaml"]["options"], main["twin.yaml"]["options"]
    assert {k: v for k, v in farm_opts.items() if k != "twin_bench"} == \
        {k: v for k, v in twin_opts.items() if k != "twin_bench"}
