"""Keep secrets out of everything the suite writes: logs, reports, JUnit, result files.

labgrid logs what it writes to a console at its CONSOLE level (``-vvv``) and DEBUG, so a
ShellDriver's login password reaches the live log, ``--log-file`` and the captured log of a
failing test; labgrid's DEBUG log also dumps a RemotePlace's resources, passwords included,
before the suite has seen them. Rather than trusting every writer, the suite masks, at the
few points where text leaves the process (every log record as it is made, every test
report, every result record):
- the secrets it has learnt: the environment's and its resources' values under a secret
  name (``password``, ``passphrase``, ``passwd``, ``secret``, ``*token``, ``api_key``/
  ``apikey``/``api-key``, ``pwd``, ``auth``, ``bearer``, ``credential*``,
  ``authorization``), and the credentials of any URL among their values
  (``http://admin:PW@pdu/...``, ``http://TOKEN@host/...``), each in every form it is
  printed in: as is, in a ``repr`` of a str or of bytes, JSON-escaped (with and without
  ``ensure_ascii``, once or twice), percent-encoded;
- whatever is written after such a name, learnt or not and whatever its length (the name
  says it is secret): quoted (``password='x'``, ``"password": "x"``, the coordinator's
  ``key: "password" value { string_value: "x" }``, ``\\"password\\": \\"x\\"`` in JSON
  that holds JSON) or not (``password=x``, ``password: x``, ``--password x``,
  ``--password=x``, ``auth=('admin', 'x')``), and an ``Authorization:`` header's
  credentials (``Authorization: Bearer x``, ``Authorization: Basic x``);
- the password of any URL (``scheme://user:x@host``), and the user part of an
  ``http(s)://x@host`` URL (a token, by convention).

A learnt secret shorter than ``MIN_LENGTH`` is not masked on its own (it would mask
ordinary words of every line); it is named in ``too_short``.

Records are best masked before they are serialised (``Redactor.data``, ``Redactor.dumps``):
masking a serialised text works on the escaped forms above, but cannot tell a learnt secret
from a number of the JSON around it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from collections import UserString
from urllib.parse import quote, quote_plus, unquote

import attr

MASK = "[redacted]"
MIN_LENGTH = 4  # shorter values would mask ordinary words of every log line
_MASK = re.escape(MASK)
# names of a secret: "max_new_tokens" and "host_key" are not; "x-api-key" and "db_pwd" are
_BASE_NAME = (r"\w*(?:password|passphrase|passwd|secret|credential)\w*|\w*token"
              r"|[\w-]*api[_-]?key|(?:\w+_)?pwd|(?:\w+_)?auth|bearer")
_NAME = _BASE_NAME + r"|(?:proxy-)?authorization"
_SECRET_NAME = re.compile(_NAME, re.IGNORECASE)
# cheap test before the patterns
_HINT = re.compile(r"pass|secret|token|api.?key|pwd|auth|bearer|credential", re.IGNORECASE)
_QUOTED = r"""(?P<p>[bBrRuU]{0,2})(?P<q>['"])(?:\\.|(?!(?P=q)).)*(?P=q)"""
# a quoted value inside a JSON string (JSON that holds JSON): \"x\", its own escapes doubled
_ESCAPED_QUOTED = r'''(?P<p>)(?P<q>\\")(?:(?:\\){4}|(?:\\){3}"|(?:\\){2}[^\\]|\\[^"\\]|[^\\"])*\\"'''
# an unquoted value: up to a space, quote or separator; never a lone backslash, so that the
# escapes of a serialised (JSON) text stay whole; not a literal, not a mask already there
_UNQUOTED = (rf"""(?!{_MASK}|(?:null|true|false|none|str|bytes|int|optional)\b|[bBrRuU]{{0,2}}['"])"""
             r"""(?:\\[^\s'"nrt]|[^\s'"\\,;&()\[\]{}<>])+""")
_KEY = r"""(?P<kq>\\?['"])?[ \t]*[=:][ \t]*"""
_PATTERNS = [
    # Authorization: Bearer x   'Authorization': 'Basic x'   -H "Authorization: token x"
    (re.compile(rf"""(?P<key>\b(?:proxy-)?authorization{_KEY}(?P<vq>\\?['"])?"""
                rf"""(?:(?:basic|bearer|token|digest|negotiate|ntlm|apikey)[ \t]+)?)"""
                rf"""(?!{_MASK})(?P<v>(?:\\[^\s'"]|[^\s'"\\,;])+)""", re.IGNORECASE),
     lambda m: f"{m['key']}{MASK}"),
    # password='x'  "password": "x"  password: 'x'  password=b'x'
    (re.compile(rf"""(?P<key>\b(?:{_NAME})\b['"]?\s*[=:]\s*){_QUOTED}""", re.IGNORECASE),
     lambda m: f"{m['key']}{m['p']}{m['q']}{MASK}{m['q']}"),
    # \"password\": \"x\" (a JSON text inside a JSON string)
    (re.compile(rf"""(?P<key>\b(?:{_NAME})\b(?:\\['"])?\s*[=:]\s*){_ESCAPED_QUOTED}""", re.IGNORECASE),
     lambda m: f"{m['key']}{m['q']}{MASK}{m['q']}"),
    # the coordinator's protobuf dump of a resource's parameters
    (re.compile(rf"""(?P<key>key:\s*"(?:{_NAME})"\s*value\s*\{{\s*string_value:\s*){_QUOTED}""", re.IGNORECASE),
     lambda m: f"{m['key']}{m['p']}{m['q']}{MASK}{m['q']}"),
    # auth=('admin', 'x')  "credentials": ["admin", "x"]: every quoted item
    (re.compile(rf"""(?P<key>\b(?:{_BASE_NAME})\b{_KEY})(?P<items>[(\[][^()\[\]\n]*[)\]])""", re.IGNORECASE),
     lambda m: m["key"] + re.sub(_QUOTED, lambda q: f"{q['p']}{q['q']}{MASK}{q['q']}", m["items"])),
    # password=x  password: x  "password": 1234 (stays JSON: the mask is quoted as the name is)
    (re.compile(rf"""(?P<key>\b(?:{_BASE_NAME})\b{_KEY}){_UNQUOTED}""", re.IGNORECASE),
     lambda m: f"{m['key']}{m['kq'] or ''}{MASK}{m['kq'] or ''}"),
    # --password x  --api-key=x  (not --password-file F, not a following --option)
    (re.compile(rf"""(?P<key>(?<![\w-])--(?:{_BASE_NAME})(?:=|[ \t]+))(?!--){_UNQUOTED}""", re.IGNORECASE),
     lambda m: f"{m['key']}{MASK}"),
]
# scheme://user:password@host  scheme://token@host (userinfo ends at the authority's last @)
_URL_CREDENTIALS = re.compile(
    r"""(?P<pre>\b(?P<scheme>[a-z][a-z0-9+.\-]*)://)(?P<user>[^\s/?#@:"'<>\\`]*)"""
    r"""(?::(?P<pw>[^\s/?#"'<>\\`]*))?@""", re.IGNORECASE)
_TOKEN_SCHEMES = {"http", "https", "ws", "wss"}  # where a user without a password is a token


def is_secret_name(name: str) -> bool:
    return _SECRET_NAME.fullmatch(name) is not None


def _url_credentials(text: str):
    """(kind, value) of every URL credential in text: ("password", pw) or ("token", user)."""
    for m in _URL_CREDENTIALS.finditer(text):
        if m["pw"] is not None:
            if m["pw"]:
                yield "password", m["pw"]
        elif m["user"] and m["scheme"].lower() in _TOKEN_SCHEMES:
            yield "token", m["user"]


def _mask_url(m: re.Match) -> str:
    if m["pw"] is not None:
        return f"{m['pre']}{m['user']}:{MASK if m['pw'] else ''}@"
    if m["user"] and m["scheme"].lower() in _TOKEN_SCHEMES:
        return f"{m['pre']}{MASK}@"
    return m[0]


def _mask_named_values(text: str) -> str:
    if "@" in text and "://" in text:
        text = _URL_CREDENTIALS.sub(_mask_url, text)
    if not _HINT.search(text):
        return text
    for pattern, replace in _PATTERNS:
        text = pattern.sub(replace, text)
    return text


def _forms(value: str) -> set[str]:
    """value as printed: itself, in the repr of a str or bytes (whichever quote Python picks),
    JSON-escaped (ASCII or not, once or in JSON held in JSON), percent-encoded."""
    forms = {value, repr(value)[1:-1], repr(value + "'\"")[1:-4], ascii(value)[1:-1], ascii(value + "'\"")[1:-4]}
    raw = value.encode("utf-8", "surrogatepass")
    forms |= {repr(raw)[2:-1], repr(raw + b"'\"")[2:-4]}
    for ensure_ascii in (True, False):
        once = json.dumps(value, ensure_ascii=ensure_ascii)[1:-1]
        forms |= {once, json.dumps(once, ensure_ascii=ensure_ascii)[1:-1]}
    forms |= {quote(value, safe=""), quote_plus(value, safe="")}
    return {f for f in forms if f}


class Redactor:
    """The secrets known so far, and the masking of text that may contain them."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self.too_short: set[str] = set()  # names of secrets not masked: too short to mask safely
        self._lock = threading.Lock()

    def add(self, value, name: str = "secret") -> None:
        if isinstance(value, UserString):  # labgrid's YAML loader keeps `|` blocks as UserString
            value = str(value)
        if not isinstance(value, str) or not value:
            return
        if len(value) < MIN_LENGTH:
            self.too_short.add(name)
            return
        forms = _forms(value)
        with self._lock:
            self._secrets |= forms

    def add_from_url(self, text, name: str = "url") -> None:
        """The credentials of every URL in text (a PDU's ``http://admin:PW@pdu/...``), and
        their percent-decoded forms: masked even when printed without their URL."""
        if isinstance(text, UserString):
            text = str(text)
        if not isinstance(text, str) or "@" not in text:
            return
        for kind, value in _url_credentials(text):
            for form in {value, unquote(value)}:
                self.add(form, f"{name} (URL {kind})")

    def add_from_config(self, data, path: str = "") -> None:
        """Every string under a secret-like key of a (YAML) mapping, at any depth, and the
        credentials of every URL among its strings."""
        if isinstance(data, Mapping):
            for key, value in data.items():
                where = f"{path}.{key}" if path else str(key)
                if is_secret_name(str(key)) and isinstance(value, (str, UserString)):
                    self.add(value, where)
                    self.add_from_url(value, where)
                else:
                    self.add_from_config(value, where)
        elif isinstance(data, (list, tuple)):
            for i, value in enumerate(data):
                self.add_from_config(value, f"{path}[{i}]")
        else:
            self.add_from_url(data, path)

    def add_from_target(self, target) -> None:
        """Secret-like attributes of a labgrid target's resources and drivers, and the URL
        credentials in any of their attributes (a RemotePlace's resources carry the
        exporter's values, which no environment file holds)."""
        for thing in [*getattr(target, "resources", []), *getattr(target, "drivers", [])]:
            if not attr.has(type(thing)):
                continue
            for field in attr.fields(type(thing)):
                value = getattr(thing, field.name, None)
                where = f"{target.name}.{type(thing).__name__}.{field.name}"
                if is_secret_name(field.name.lstrip("_")):
                    self.add(value, where)
                self.add_from_url(value, where)

    def __call__(self, text: str) -> str:
        if not isinstance(text, str):
            return text
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        return _mask_named_values(text)

    def contains_secret(self, text: str) -> bool:
        return self(text) != text

    def data(self, value):
        """A copy of a record (dicts, lists, tuples, strings at any depth) with its secrets
        masked, for serialising: a value under a secret name is masked whole (unless None or a
        bool), every string masked as text. Other objects are left as they are."""
        if isinstance(value, (str, UserString)):
            return self(str(value))
        if isinstance(value, Mapping):
            masked = {}
            for key, item in value.items():
                name = self(key) if isinstance(key, str) else key
                secret = isinstance(key, str) and is_secret_name(key)
                if secret and isinstance(item, (str, UserString, int, float)) and not isinstance(item, bool):
                    masked[name] = MASK
                else:
                    masked[name] = self.data(item)
            return masked
        if isinstance(value, (list, tuple)):
            masked = [self.data(item) for item in value]
            return tuple(masked) if isinstance(value, tuple) else masked
        return value

    def dumps(self, value, **kwargs) -> str:
        """``json.dumps`` of a record masked before it is serialised (what ``default`` makes
        of other objects too)."""
        default = kwargs.pop("default", None)
        if default is not None:
            kwargs["default"] = lambda o: self.data(default(o))
        return json.dumps(self.data(value), **kwargs)


REDACTOR = Redactor()
redact = REDACTOR

_installed = False
_TRACEBACKS = logging.Formatter()


def install_log_filter() -> None:
    """Mask secrets in every log record as it is made, whichever logger and handler it goes to.

    A record factory, not a handler filter: pytest, labgrid and xdist add and swap handlers
    during a run, but every record of the process comes through the one factory."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's to report, not ours
            return record
        masked = REDACTOR(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[0] is not None:
            # handlers print exc_text when it is set: format the traceback once, masked
            record.exc_text = REDACTOR(_TRACEBACKS.formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
