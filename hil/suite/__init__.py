"""The qualification suite's logic, apart from pytest: the lab environment read once
(``env``), the frozen suite configuration (``config``), inference runs and benchmarks
(``inference``), provenance (``provenance``), the results recorder (``recorder``) and the
masking of secrets (``redact``). ``fixtures/`` adapts these to pytest."""
