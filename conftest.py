"""Root conftest: the suite's fixture plugins (see fixtures/)."""

pytest_plugins = [
    "fixtures.bench",
    "fixtures.options",
    "fixtures.board",
    "fixtures.deploy",
    "fixtures.npu",
    "fixtures.inference",
    "fixtures.results",
]
