"""labgrid's HTTP power backends, bounded in time and named when they fail.

labgrid 26.0.1's HTTP power backends (``simplerest``, ``rest``, ``gude*``, ``netio``,
``shelly_*``, ...) call ``requests`` without a timeout: a PDU that accepts the connection and
never answers hangs the run forever, and one that refuses shows a raw ``HTTPConnectionPool
(...) Max retries exceeded``. ``bound_power_backends`` gives every such backend module a
``requests`` whose calls carry a (connect, read) timeout and whose failures are a
``PDUError`` (a ``LabFault``) naming the PDU, without the credentials a URL may carry. It is
applied when ``hil.lab`` is imported, so any env that lists ``imports: [hil.lab]`` gets it.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from urllib.parse import urlsplit

import requests

from hil.lab.labfault import LabFault

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0


class PDUError(LabFault):
    def __init__(self, message: str) -> None:
        super().__init__("PDU", message)


def _where(url: str) -> str:
    """The PDU's address without user and password."""
    parts = urlsplit(str(url))
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or "?")


class BoundedRequests:
    """What a power backend sees as ``requests``: the same calls, with timeouts and named errors."""

    def __init__(self, timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT)) -> None:
        self.timeout = timeout

    def request(self, method: str, url: str, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        where = _where(url)
        try:
            return requests.request(method, url, **kwargs)
        except requests.Timeout:
            raise PDUError(f"the PDU at {where} did not answer within {kwargs['timeout'][1]:g} s: check that it is "
                           "powered and reachable (the board's power state is unknown)") from None
        except requests.ConnectionError as e:
            cause = "refused the connection" if "refused" in str(e).lower() else "could not be reached"
            raise PDUError(f"the PDU at {where} {cause}: check its address and network") from None

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def put(self, url, data=None, **kwargs):
        return self.request("PUT", url, data=data, **kwargs)

    def post(self, url, data=None, **kwargs):
        return self.request("POST", url, data=data, **kwargs)

    def __getattr__(self, name):  # exceptions, auth classes, ... as requests has them
        return getattr(requests, name)


BOUNDED = BoundedRequests()


def bound_power_backends() -> list[str]:
    """Give every labgrid power backend that uses requests the bounded one; returns their names."""
    import labgrid.driver.power as power

    done = []
    for info in pkgutil.iter_modules(power.__path__):
        source = Path(power.__path__[0]) / f"{info.name}.py"
        try:
            if not re.search(r"^import requests\b", source.read_text(), re.M):
                continue
            module = importlib.import_module(f"labgrid.driver.power.{info.name}")
        except (OSError, ImportError):
            continue  # a backend whose own dependencies are missing is not usable anyway
        module.requests = BOUNDED
        done.append(info.name)
    return done
