"""Keep secrets out of everything the suite writes: logs, reports, JUnit, result files.

labgrid logs what it writes to a console at its CONSOLE level (``-vvv``) and DEBUG, so a
ShellDriver's login password reaches the live log, ``--log-file`` and the captured log of a
failing test; labgrid's DEBUG log also dumps a RemotePlace's resources, passwords included,
before the suite has seen them. Rather than trusting every writer, the suite masks, at the
few points where text leaves the process (every log record as it is made, every test
report, every result record):
- the secrets it has learnt: the environment's and its resources' values under a secret
  name (``password``, ``passphrase``, ``secret``, ``*token``);
- any quoted value written after such a name (``password='x'``, ``"password": "x"``, and
  the coordinator's ``key: "password" value { string_value: "x" }``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping

import attr

MASK = "[redacted]"
MIN_LENGTH = 4  # shorter values would mask ordinary words of every log line
_NAME = r"\w*(?:password|passphrase|passwd|secret)\w*|\w*token"  # not "max_new_tokens"
_SECRET_NAME = re.compile(_NAME, re.IGNORECASE)
_HINT = re.compile(r"pass|secret|token", re.IGNORECASE)  # cheap test before the patterns
_QUOTED = r"""(?P<q>['"])(?:\\.|(?!(?P=q)).)*(?P=q)"""
_PATTERNS = [
    # password='x'  "password": "x"  password: 'x'
    re.compile(rf"""(?P<key>\b(?:{_NAME})\b['"]?\s*[=:]\s*){_QUOTED}""", re.IGNORECASE),
    # the coordinator's protobuf dump of a resource's parameters
    re.compile(rf"""(?P<key>key:\s*"(?:{_NAME})"\s*value\s*\{{\s*string_value:\s*){_QUOTED}""", re.IGNORECASE),
]


def is_secret_name(name: str) -> bool:
    return _SECRET_NAME.fullmatch(name) is not None


def _mask_named_values(text: str) -> str:
    if not _HINT.search(text):
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: f"{m['key']}{m['q']}{MASK}{m['q']}", text)
    return text


class Redactor:
    """The secrets known so far, and the masking of text that may contain them."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self.too_short: set[str] = set()  # names of secrets not masked: too short to mask safely
        self._lock = threading.Lock()

    def add(self, value, name: str = "secret") -> None:
        if not isinstance(value, str) or not value:
            return
        if len(value) < MIN_LENGTH:
            self.too_short.add(name)
            return
        forms = {value, repr(value)[1:-1], repr(value.encode())[2:-1]}  # as printed in str, repr, bytes
        with self._lock:
            self._secrets |= {f for f in forms if f}

    def add_from_config(self, data, path: str = "") -> None:
        """Every string under a secret-like key of a (YAML) mapping, at any depth."""
        if isinstance(data, Mapping):
            for key, value in data.items():
                where = f"{path}.{key}" if path else str(key)
                if is_secret_name(str(key)) and isinstance(value, str):
                    self.add(value, where)
                else:
                    self.add_from_config(value, where)
        elif isinstance(data, (list, tuple)):
            for i, value in enumerate(data):
                self.add_from_config(value, f"{path}[{i}]")

    def add_from_target(self, target) -> None:
        """Secret-like attributes of a labgrid target's resources and drivers (a RemotePlace's
        resources carry the exporter's values, which no environment file holds)."""
        for thing in [*getattr(target, "resources", []), *getattr(target, "drivers", [])]:
            if not attr.has(type(thing)):
                continue
            for field in attr.fields(type(thing)):
                if is_secret_name(field.name):
                    self.add(getattr(thing, field.name, None), f"{target.name}.{type(thing).__name__}.{field.name}")

    def __call__(self, text: str) -> str:
        if not isinstance(text, str):
            return text
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        return _mask_named_values(text)

    def contains_secret(self, text: str) -> bool:
        return self(text) != text


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
