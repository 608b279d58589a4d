"""NPU stack: the RKNPU driver and the RKLLM/RKNN runtimes fit together."""

import shlex

from hil.rockchip import versions


def test_driver_new_enough_for_runtime(npu, suite_config, record_property):
    driver = npu.driver_version()
    runtime = suite_config.kit.runtime.rkllm_runtime
    needed = versions.required_driver(runtime)
    record_property("rknpu_driver", driver)
    record_property("rkllm_runtime", runtime)
    assert versions.at_least(driver, needed), (
        f"RKNPU driver {driver} is too old for RKLLM runtime {runtime}, which needs {needed}: "
        f"flash an image with RKNPU driver {needed} or newer")


def test_two_npu_cores(npu):
    load = npu.load()
    assert sorted(load) == ["Core0", "Core1"], f"rknpu load lists cores {sorted(load)}; the RK3576 NPU has Core0 and Core1"


def test_npu_devfreq_present(npu, record_property):
    node = npu.devfreq(versions.RK3576.devfreq_npu)
    record_property("npu_available_frequencies", " ".join(str(f) for f in node["available_frequencies"]))
    assert node["available_frequencies"], f"devfreq {versions.RK3576.devfreq_npu} lists no frequencies"


def _strings_version(shell, path: str, pattern: str) -> str | None:
    """The version string a runtime library carries, as `strings LIB | grep version` finds it."""
    out = shell.run(f"test -e {shlex.quote(path)} && grep -a -o -E {shlex.quote(pattern)} {shlex.quote(path)} | head -n 1",
                    timeout=20)[0]
    found = (versions.librkllmrt_version(out[0]) or versions.librknnrt_version(out[0])) if out else None
    return found.version if found else None


def test_runtime_versions_match_bundle(shell, deployment, suite_config, record_property):
    bundle = suite_config.kit.runtime
    lib = deployment.path("demo_Linux_aarch64/lib")
    deployed = {
        "librkllmrt.so": _strings_version(shell, f"{lib}/librkllmrt.so", r"rkllm-runtime version: [^ ,]+"),
        "librknnrt.so": _strings_version(shell, f"{lib}/librknnrt.so", r"librknnrt version: [^ ]+ \([^)]*\)"),
    }
    system = {
        "librkllmrt.so": _strings_version(shell, "/usr/lib/librkllmrt.so", r"rkllm-runtime version: [^ ,]+"),
        "librknnrt.so": _strings_version(shell, "/usr/lib/librknnrt.so", r"librknnrt version: [^ ]+ \([^)]*\)"),
    }
    want = {"librkllmrt.so": bundle.rkllm_runtime, "librknnrt.so": bundle.rknn_runtime}
    problems = []
    for name, version in want.items():
        record_property(f"{name}.deployed", deployed[name] or "")
        record_property(f"{name}.system", system[name] or "")
        if deployed[name] != version:
            problems.append(f"deployed {name} reports {deployed[name]}, the bundle says {version}")
        if system[name] is not None and system[name] != version:
            problems.append(f"the image's /usr/lib/{name} is {system[name]}, the bundle's is {version}: "
                            "programs that do not set LD_LIBRARY_PATH run a different runtime")
    assert not problems, "; ".join(problems)
