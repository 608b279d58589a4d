"""Root conftest: the suite's fixture plugins (see fixtures/)."""

pytest_plugins = [
    "fixtures.collection",
    "fixtures.interrupt",
    "fixtures.options",
    "fixtures.deadline",
    "fixtures.secrets",
    "fixtures.farm",
    "fixtures.bench",
    "fixtures.provenance",
    "fixtures.watchdog",
    "fixtures.board",
    "fixtures.deploy",
    "fixtures.npu",
    "fixtures.inference",
    "fixtures.vision",
    "fixtures.endurance",
    "fixtures.results",
]
