# The two entry points of the README's Quick start. Both set the machine up first.
RESULTS ?= results
PYTEST_ARGS ?=

.PHONY: qualify test setup

setup:
	@scripts/setup

# Main job: the qualification suite against the virtual bench: flash the reference image,
# then every test; JUnit and console logs in $(RESULTS)/.
IMAGE ?= twin-good
qualify: setup
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS)
	.venv/bin/pytest --lg-env env/twin.yaml tests --image $(IMAGE) \
		--junitxml=$(RESULTS)/junit.xml --lg-log=$(RESULTS)/console -v $(PYTEST_ARGS)

# The project's own tests: unit tests, then the bench and the suite against real QEMU boards.
test: setup
	.venv/bin/pytest -p no:labgrid selftest $(PYTEST_ARGS)
