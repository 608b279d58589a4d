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


# URL credentials, wider names, unquoted forms, serialised forms, the env's template --------

def test_url_credentials_are_masked_in_any_text():
    r = Redactor()
    assert r("GET http://admin:pw@pdu.lab/relay/3/1") == f"GET http://admin:{MASK}@pdu.lab/relay/3/1"
    assert r("host='http://admin:p@ss:w@pdu/relay/{index}'") == f"host='http://admin:{MASK}@pdu/relay/{{index}}'"
    assert r("https://ghp_0123456789@github.com/o/r.git") == f"https://{MASK}@github.com/o/r.git", "a token-only URL"
    assert r("ssh://root@board:22/ and http://pdu.lab:8080/a@b") == "ssh://root@board:22/ and http://pdu.lab:8080/a@b"
    assert r(json.dumps({"host": "http://admin:s3cr3t@pdu/x"})) == json.dumps({"host": f"http://admin:{MASK}@pdu/x"})


def test_url_credentials_of_the_env_and_resources_are_learnt():
    r = Redactor()
    r.add_from_config({"targets": {"main": {"resources": {"NetworkPowerPort": {
        "model": "simplerest", "host": "http://admin:p%40ss-w0rd@pdu.lab/relay/{index}/{value}", "index": 3}}}}})
    assert r("requests said p@ss-w0rd and p%40ss-w0rd") == f"requests said {MASK} and {MASK}", "decoded and as is"
    assert r("user admin") == "user admin", "a URL's user name is not a secret"

    @attr.s
    class NetworkPowerPort:
        host = attr.ib(default="https://tok-0123456789@pdu.lab/relay/{index}")

    @attr.s
    class NetworkPowerDriver:
        _host = attr.ib(default="http://admin:drv-pass-9@10.0.0.9:80/relay/3")

    class Target:
        name = "main"
        resources = [NetworkPowerPort()]
        drivers = [NetworkPowerDriver()]

    r.add_from_target(Target())
    assert r("tok-0123456789 drv-pass-9") == f"{MASK} {MASK}"


@pytest.mark.parametrize("name", ["password", "passphrase", "secret", "api_token", "api_key", "apikey", "api-key",
                                  "X-API-Key", "pwd", "db_pwd", "auth", "basic_auth", "bearer", "credential",
                                  "credentials", "authorization"])
def test_secret_names(name):
    from hil.suite.redact import is_secret_name
    assert is_secret_name(name)
    r = Redactor()
    assert r(f"{name}='v-1' {name}: \"v-2\"") == f"{name}='{MASK}' {name}: \"{MASK}\""
    r.add_from_config({"x": {name: "learnt-value"}})
    assert r("learnt-value") == MASK


@pytest.mark.parametrize("name", ["max_new_tokens", "prefill_tokens", "host_key", "key", "oauth", "passed",
                                  "username", "authority"])
def test_ordinary_names_are_not_secret_names(name):
    from hil.suite.redact import is_secret_name
    assert not is_secret_name(name)
    assert Redactor()(f"{name}=512 {name}: 'abc'") == f"{name}=512 {name}: 'abc'"


def test_authorization_headers_are_masked():
    r = Redactor()
    assert r("Authorization: Bearer eyJhbGc.x.y") == f"Authorization: Bearer {MASK}"
    assert r("authorization: Basic YWRtaW46cHc=") == f"authorization: Basic {MASK}"
    assert r("curl -H 'Authorization: token ghp_x' url") == f"curl -H 'Authorization: token {MASK}' url"
    assert r("Proxy-Authorization: abcdef") == f"Proxy-Authorization: {MASK}"
    assert "YWRt" not in r("{'Authorization': 'Basic YWRtaW46cHc='}")
    headers = json.dumps({"Authorization": "Bearer t0k"})
    assert json.loads(r(headers)) == {"Authorization": MASK}


def test_unquoted_values_are_masked_whatever_their_length():
    r = Redactor()
    assert r("password=x next") == f"password={MASK} next"
    assert r("password: x") == f"password: {MASK}"
    assert r("login --password x --verbose") == f"login --password {MASK} --verbose"
    assert r("login --password=hunter2 -v") == f"login --password={MASK} -v"
    assert r("--api-key abc123") == f"--api-key {MASK}"
    assert r("GET /relay?token=abc&index=3") == f"GET /relay?token={MASK}&index=3"
    assert r("api_key=k1, PWD=/root; auth: s3") == f"api_key={MASK}, PWD={MASK}; auth: {MASK}"
    assert r("password=b'xyz\\n'") == f"password=b'{MASK}'"
    assert r("auth=('admin', 'pw')") == f"auth=('{MASK}', '{MASK}')"
    # not a value: nothing after the name, a flag naming a file, a literal, a type
    for text in ("Password: \nroot@board:~# ", "--password-file /etc/pw", "password=None",
                 "def login(self, password: str, token: Optional[str] = None):", "--password --verbose"):
        assert r(text) == text
    # a serialised record stays valid JSON
    assert json.loads(r(json.dumps({"password": 1234, "token": None}))) == {"password": MASK, "token": None}


def test_short_learnt_values_stay_unmasked_but_short_named_values_are_masked():
    r = Redactor()
    r.add_from_config({"ShellDriver": {"password": "rk"}})
    assert r("rk3576 password=rk") == f"rk3576 password={MASK}"


SPECIAL = 'pä"ss\\wörd→😀'


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_learnt_secrets_are_masked_in_their_serialised_forms(ensure_ascii):
    r = Redactor()
    r.add(SPECIAL)
    for text in (SPECIAL, repr(SPECIAL), repr(SPECIAL.encode()), ascii(SPECIAL), repr(SPECIAL + "'"),
                 json.dumps({"note": f"used {SPECIAL}"}, ensure_ascii=ensure_ascii),
                 json.dumps({"m": json.dumps({"note": SPECIAL}, ensure_ascii=ensure_ascii)},
                            ensure_ascii=ensure_ascii)):
        masked = r(text)
        assert MASK in masked and "rd" not in masked and "p" not in masked, (text, masked)
    serialised = json.dumps({"note": f"used {SPECIAL}"}, ensure_ascii=ensure_ascii)
    assert json.loads(r(serialised)) == {"note": f"used {MASK}"}


def test_result_records_with_escaped_and_non_ascii_secrets_are_masked(redactor, tmp_path):
    redactor.add(SPECIAL)
    folder = RunFolder.create(tmp_path)
    folder.write_info({"run_id": folder.path.name, "env": {"note": f"used {SPECIAL}"}})  # ensure_ascii=True
    folder.append({"type": "test", "message": f"login {SPECIAL} refused"})               # ensure_ascii=False
    run = (folder.path / "run.json").read_text()
    results = (folder.path / "results.jsonl").read_text()
    for text in (run, results):
        for fragment in ("p\\u00e4", "pä", "w\\u00f6rd", "wörd", "\\ud83d", "😀"):
            assert fragment not in text
    assert json.loads(run)["env"]["note"] == f"used {MASK}"
    assert json.loads(results)["message"] == f"login {MASK} refused"


def test_records_are_masked_before_they_are_serialised():
    r = Redactor()
    r.add(SPECIAL)
    record = {"password": 1234, "auth": None, "env": [{"note": f"used {SPECIAL}", "n": 1234},
                                                      ("Authorization: Bearer t0k",)], "when": object}
    assert r.data(record) == {"password": MASK, "auth": None, "env": [{"note": f"used {MASK}", "n": 1234},
                                                                       (f"Authorization: Bearer {MASK}",)],
                              "when": object}
    text = r.dumps({"x": object(), "note": SPECIAL}, default=lambda o: f"password={SPECIAL}")
    assert json.loads(text) == {"x": f"password={MASK}", "note": MASK}


def _board_template_with_password(monkeypatch, tmp_path, value):
    """env/rk3576.yaml with its commented password line in force, the variable it names set."""
    import re
    from hil.paths import REPO

    text = (REPO / "env" / "rk3576.yaml").read_text()
    line = re.search(r"^(?P<indent> *)#(?P<gap> +)(?P<entry>password: !template '\$(?P<var>\w+)')$", text, re.M)
    assert line, "env/rk3576.yaml no longer shows how to give the board's password"
    monkeypatch.setenv(line["var"], value)
    path = tmp_path / "rk3576.yaml"
    path.write_text(text.replace(line[0], f"{line['indent']}{line['entry']}"))
    return str(path)


def test_the_board_templates_password_form_is_one_labgrid_resolves(monkeypatch, tmp_path):
    from labgrid import Environment

    env = Environment(_board_template_with_password(monkeypatch, tmp_path, "b0ard-pass"))
    target = env.get_target("main")
    try:
        assert target.get_driver("ShellDriver", activate=False).password == "b0ard-pass"
    finally:
        target.cleanup()
    r = Redactor()
    r.add_from_config(env.config.data)  # what fixtures/secrets.py learns at session start
    assert r("login b0ard-pass") == f"login {MASK}"


def test_labgrid_templates_substitute_only_lg_variables(monkeypatch, tmp_path):
    from labgrid import Environment
    from labgrid.exceptions import InvalidConfigError

    path = tmp_path / "env.yaml"
    path.write_text("targets:\n  main:\n    options:\n      pw: !template '$RK3576_ROOT_PASSWORD'\n")
    monkeypatch.setenv("RK3576_ROOT_PASSWORD", "b0ard-pass")
    with pytest.raises(InvalidConfigError, match="unknown variable"):
        Environment(str(path))


def test_report_properties_are_masked_at_any_depth(redactor):
    from types import SimpleNamespace

    from fixtures.secrets import pytest_runtest_makereport

    redactor.add(SECRET)
    report = SimpleNamespace(longrepr=None, sections=[("log", f"sent {SECRET}")],
                             user_properties=[("note", f"used {SECRET}"), ("env", {"api_key": "k-1", "n": [SECRET]})])
    hook = pytest_runtest_makereport(None, None)
    next(hook)
    with pytest.raises(StopIteration) as done:
        hook.send(report)
    assert done.value.value.sections == [("log", f"sent {MASK}")]
    assert report.user_properties == [("note", f"used {MASK}"), ("env", {"api_key": MASK, "n": [MASK]})]
