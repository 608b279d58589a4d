"""Secrets are masked in log records, report texts and result records."""

from __future__ import annotations

import json
import logging

import attr
import pytest

from hil.suite.redact import MASK, REDACTOR, Redactor, install_log_filter
from hil.measure.runfolder import RunFolder

SECRET = "s3cr3t-Pw!"


@pytest.fixture
def redactor() -> Redactor:
    """The process-wide redactor the suite's plugin fills, as it was before the test afterwards."""
    before = set(REDACTOR._secrets)
    yield REDACTOR
    REDACTOR._secrets = before


def test_masks_plain_repr_and_bytes_forms():
    r = Redactor()
    r.add("pa'ss\\word")
    assert r("login with pa'ss\\word") == f"login with {MASK}"
    assert r(repr("pa'ss\\word")) == f'"{MASK}"'
    assert MASK in r(repr(b"pa'ss\\word\n")), "the bytes repr labgrid logs console writes with"
    assert r("nothing here") == "nothing here"


def test_learns_secret_keys_at_any_depth_of_an_environment():
    r = Redactor()
    env = {"targets": {"main": {"drivers": {"ShellDriver": {"username": "root", "password": SECRET},
                                            "Other": [{"api_token": "tok-123456"}]},
                                "resources": {"NetworkService": {"address": "10.0.0.2"}}}}}
    r.add_from_config(env)
    assert r(f"{SECRET} tok-123456 root 10.0.0.2") == f"{MASK} {MASK} root 10.0.0.2"


def test_short_secrets_are_named_not_masked():
    r = Redactor()
    r.add_from_config({"ShellDriver": {"password": "rk"}})
    assert r.too_short == {"ShellDriver.password"}
    assert r("rk3576") == "rk3576", "a two-letter password must not eat every word that contains it"


def test_learns_from_a_targets_resources_and_drivers():
    @attr.s
    class NetworkService:
        address = attr.ib(default="h")
        password = attr.ib(default=SECRET)

    @attr.s
    class ShellDriver:
        password = attr.ib(default="drv-pass-1")

    class Target:
        name = "main"
        resources = [NetworkService()]
        drivers = [ShellDriver(), object()]

    r = Redactor()
    r.add_from_target(Target())
    assert r(f"{SECRET}/drv-pass-1") == f"{MASK}/{MASK}"


def test_values_named_as_secrets_are_masked_unlearnt():
    r = Redactor()
    resource = "NetworkService(address='10.0.0.2', username='root', password='abc\\'d', port=22)"
    assert r(resource) == f"NetworkService(address='10.0.0.2', username='root', password='{MASK}', port=22)"
    assert r('{"api_token": "t-1", "max_new_tokens": "512"}') == f'{{"api_token": "{MASK}", "max_new_tokens": "512"}}'
    dump = 'params {\n  key: "password"\n  value {\n    string_value: "pw-77"\n  }\n}'
    assert "pw-77" not in r(dump) and MASK in r(dump)
    assert r("prefill_tokens: '12'") == "prefill_tokens: '12'"


def test_log_records_are_masked_whatever_the_handler(redactor, caplog):
    install_log_filter()
    redactor.add(SECRET)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("SerialLogger.main.SerialDriver").debug("Write %i bytes: %s", 11, SECRET.encode() + b"\n")
        logging.getLogger("other").info(f"password is {SECRET}")
    text = caplog.text
    assert SECRET not in text
    assert text.count(MASK) == 2


def test_logged_tracebacks_are_masked(redactor, caplog):
    install_log_filter()
    redactor.add(SECRET)
    try:
        raise RuntimeError(f"login refused for {SECRET}")
    except RuntimeError:
        logging.getLogger("paramiko").exception("authentication failed")
    assert "RuntimeError: login refused for [redacted]" in caplog.text
    assert SECRET not in caplog.text


def test_result_records_are_masked(redactor, tmp_path):
    redactor.add(SECRET)
    folder = RunFolder.create(tmp_path)
    folder.write_info({"run_id": folder.path.name, "env": {"note": f"used {SECRET}"}})
    folder.append({"type": "test", "message": f"login {SECRET} refused"})
    written = (folder.path / "results.jsonl").read_text() + (folder.path / "run.json").read_text()
    assert SECRET not in written
    assert json.loads((folder.path / "results.jsonl").read_text())["message"] == f"login {MASK} refused"
