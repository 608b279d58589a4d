"""The suite's command-line options, known to pytest before it reads any conftest.

pytest parses the command line once before it loads conftest files, to find its root and
the conftests to load. An option it does not know yet has its value taken for a test path:
``pytest --lg-env ENV --models-dir ~/models`` would then look for conftests under
``~/models``, never load the suite's plugins, and stop with "unrecognized arguments".
Registered as a pytest11 entry point (pyproject.toml), this module is loaded with the other
installed plugins, in time; ``fixtures/`` reads the options it declares.
"""

from __future__ import annotations

import pytest

from hil.farm import HEALTH_TIMEOUT, RESERVE_TIMEOUT
from hil.suite import endurance
from hil.suite.config import DEFAULT_MODEL, DEFAULT_REPEAT, DEFAULT_RESULTS, DEFAULT_TEST_TIMEOUT, HISTORY_ENV


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rk3576-hil", "RK3576 qualification suite")
    group.addoption("--image", metavar="NAME",
                    help="flash the image of images/firmware/NAME.yaml through the strategy before the run; "
                         "the platform tests check the board against that manifest")
    group.addoption("--no-flash", action="store_true",
                    help="do not flash; with --image, only check that the board runs that image")
    group.addoption("--demo-dir", metavar="DIR",
                    help="the SDK's demo build as it installs it (deploy/install/demo_Linux_aarch64: demo, imgenc, "
                         "lib/librkllmrt.so, lib/librknnrt.so); default: the env's target option demo_dir, or the "
                         "twin's SDK build")
    group.addoption("--llm", metavar="FILE.rkllm",
                    help="the LLM to qualify, as rkllm-toolkit wrote it (default: the env's target option llm)")
    group.addoption("--vision", metavar="FILE.rknn",
                    help="its vision encoder, as rknn-toolkit2 wrote it (default: the env's target option vision, "
                         "else the .rknn beside --llm whose name pairs with it)")
    group.addoption("--models-dir", metavar="DIR",
                    help="a folder of models (.rkllm, with their .rknn encoders; subfolders too), paired by name or "
                         "by an optional models.yaml; default: the env's target option models_dir, or the twin's "
                         "models")
    group.addoption("--model", metavar="NAME",
                    help=f"the model of --models-dir to qualify, by its .rkllm's stem (default: the only one, else "
                         f"{DEFAULT_MODEL})")
    group.addoption("--vision-models", metavar="DIR",
                    help="a folder of RKNN vision models (.rknn as rknn-toolkit2 wrote them, with an optional "
                         "vision-models.yaml) for tests/test_vision.py; default: the env's target option "
                         "vision_models, or the twin's vision set")
    group.addoption("--rknn-benchmark", metavar="DIR",
                    help="rknn_benchmark as rknpu2's build installs it (install/rknn_benchmark_Linux: "
                         "rknn_benchmark, lib/librknnrt.so); default: the env's target option rknn_benchmark, "
                         "or the twin's")
    group.addoption("--zoo-demos", metavar="DIR",
                    help="the model zoo's C demos as its build-linux.sh installs them "
                         "(install/rk3576_linux_aarch64 with rknn_yolov5_demo/ ...), for the detectors' boxes; "
                         "default: the env's target option zoo_demos, or the twin's")
    group.addoption("--golden-dir", metavar="DIR",
                    help="golden answers, DIR/<model>.yaml per runtime, recorded from a checked run with "
                         "'hil golden accept RUN'; default: the environment's target option golden_dir, "
                         "else images/golden")
    group.addoption("--limits", metavar="FILE", action="append", default=[],
                    help="limits YAML whose entries override limits/rk3576.yaml (repeatable)")
    group.addoption("--repeat", metavar="N", type=int, default=DEFAULT_REPEAT,
                    help=f"repetitions of each performance measurement, after one warm-up (default {DEFAULT_REPEAT})")
    group.addoption("--results", metavar="DIR", default=DEFAULT_RESULTS,
                    help="folder of the run result folders: DIR/<run id>/ gets results.jsonl, run.json and "
                         f"report.html, DIR/latest points at the last run (default: {DEFAULT_RESULTS})")
    group.addoption("--history", metavar="PATH",
                    help=f"SQLite history of past runs (default: ${HISTORY_ENV}, else DIR/history.sqlite under "
                         "--results); 'none' to keep no history")
    group.addoption("--baseline", metavar="auto|RUN|FILE",
                    help="compare every figure with a reference run: 'auto' (the run accepted with "
                         "'hil baseline accept' for this board, model and runtime), a run id of the history, "
                         "or a run folder / results.jsonl; a regression past its tolerance fails the test")
    group.addoption("--test-timeout", metavar="SECONDS", type=float,
                    help="deadline of each test, its fixtures included (default: the env's target option "
                         f"test_timeout, else {DEFAULT_TEST_TIMEOUT:g}); a test past it fails with the board's "
                         "console tail")

    long = parser.getgroup("rk3576-hil long tests",
                           "Endurance, soak and stress tests: they run only when chosen, with -m endurance, -m soak, "
                           "-m stress, or their option")
    long.addoption("--power-cycles", metavar="N", type=int,
                   help=f"cold boots through the PDU of the power-cycle test (-m endurance; default "
                        f"{endurance.DEFAULT_POWER_CYCLES}); giving it runs that test")
    long.addoption("--reboots", metavar="N", type=int,
                   help=f"warm reboots from the shell of the reboot test (-m endurance; default "
                        f"{endurance.DEFAULT_REBOOTS}); giving it runs that test")
    long.addoption("--power-cuts", metavar="N", type=int,
                   help=f"power cuts while the board writes to /userdata, each followed by a filesystem check and a "
                        f"verify (-m endurance; default {endurance.DEFAULT_POWER_CUTS}); giving it runs that test")
    long.addoption("--soak-duration", metavar="DURATION",
                   help="how long the inference soak runs: 90s, 30m, 2h, 1h30m (-m soak; default "
                        f"{endurance.DEFAULT_SOAK_S / 3600:g}h); giving it runs the soak")
    long.addoption("--stress-duration", metavar="DURATION",
                   help="how long stressapptest and memtester run beside NPU inference (-m stress; default "
                        f"{endurance.DEFAULT_STRESS_S / 3600:g}h); giving it runs the stress test")

    farm = parser.getgroup("rk3576-hil farm", "RK3576 farm: several labgrid places (env/farm.yaml)")
    farm.addoption("--places", metavar="P1,P2",
                   help="labgrid places to run on, one pytest-xdist worker each (default: $LG_PLACES); "
                        "with --dist each every test runs on every place, else the tests are split")
    farm.addoption("--place-tags", metavar="KEY=VALUE[,...]",
                   help="reserve -n places (default 1) with these tags through the coordinator's reservations")
    farm.addoption("--reserve-timeout", metavar="SECONDS", type=float, default=RESERVE_TIMEOUT,
                   help=f"how long --place-tags waits for free places (default {RESERVE_TIMEOUT:g})")
    farm.addoption("--health-timeout", metavar="SECONDS", type=float, default=HEALTH_TIMEOUT,
                   help="time for every place to boot to a shell and show its NPU before the run "
                        f"(default {HEALTH_TIMEOUT:g}); a place that does not is a lab fault")
    farm.addoption("--no-health-check", action="store_true",
                   help="use the places without booting them first (their faults then fail tests)")
