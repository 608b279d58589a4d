# The two entry points of the README's Quick start. Both set the machine up first.
RESULTS ?= results
PYTEST_ARGS ?=

.PHONY: qualify test setup

setup:
	@scripts/setup

# Main job: the qualification suite against the virtual bench: flash the reference image,
# then every test. The run's folder is $(RESULTS)/<run id>/ (results.jsonl, report.html;
# $(RESULTS)/latest points at it); JUnit and console logs of the last run are in $(RESULTS)/;
# $(RESULTS)/history.sqlite keeps every run, for trends and baselines.
IMAGE ?= twin-good
qualify: setup
	@mkdir -p $(RESULTS) && rm -rf $(RESULTS)/junit.xml $(RESULTS)/console
	.venv/bin/pytest --lg-env env/twin.yaml tests --image $(IMAGE) --results $(RESULTS) \
		--junitxml=$(RESULTS)/junit.xml --lg-log=$(RESULTS)/console -v $(PYTEST_ARGS)

# The project's own tests: unit tests, then the bench and the suite against real QEMU boards.
test: setup
	.venv/bin/pytest -p no:labgrid selftest $(PYTEST_ARGS)
