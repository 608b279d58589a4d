"""Root conftest: the suite's fixture plugins (see fixtures/)."""

pytest_plugins = [
    "fixtures.options",
    "fixtures.secrets",
    "fixtures.farm",
    "fixtures.bench",
    "fixtures.provenance",
    "fixtures.board",
    "fixtures.deploy",
    "fixtures.npu",
    "fixtures.inference",
    "fixtures.results",
]
