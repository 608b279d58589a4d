"""Root conftest: the suite's fixture plugins (see fixtures/)."""

pytest_plugins = ["fixtures.bench"]
