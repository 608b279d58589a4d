"""The demo build the configuration checks assume when the bundle does not declare its EMBED_SIZE."""

from __future__ import annotations

import pytest

from hil.suite.inference import demo_build
from hil.kit.bundle import RuntimeBundle


@pytest.mark.parametrize("version, declared, expected", [
    ("1.2.1", None, 1536),  # compiled in by the 1.2.0/1.2.1 SDK demos
    ("1.2.0", None, 1536),
    ("1.2.2", None, None),  # read from the encoder's output tensor
    ("1.3.0", None, None),
    ("1.2.1", 2048, 2048),  # a rebuilt demo, as runtime.yaml declares it
])
def test_embed_size_from_runtime_or_sdk_version(version, declared, expected):
    spec = RuntimeBundle(demo_dir="demo_Linux_aarch64", rkllm_runtime=version, rknn_runtime="2.3.2",
                         demo_version=version, demo_embed_size=declared, sources={"rkllm_runtime": "lib/librkllmrt.so"})
    build = demo_build(spec)
    assert build.embed_size == expected
    assert build.version == version
    assert build.assumed == (declared is None and expected is not None), "only the SDK rule is an assumption"
    assert (build.rkllm_runtime, build.source) == (version, "lib/librkllmrt.so")
