"""A farm of RK3576 boards behind a labgrid coordinator: which places a run uses, and their health.

The suite drives one board per process; a farm run (``fixtures/farm.py``) holds several
places at once. The places themselves (acquire, release, reserve by tags, who holds one)
are the lab's, in ``hil.lab.places``; the farm adds:

- this module: the run's places and tags as given on the command line (``parse_places``,
  ``parse_tags``), a place's ``Health``, and the farm's defaults;
- ``hil.farm.health``: boot each place to a shell and read its NPU, one subprocess per place
  (``python -m hil.farm check``), all at once, each with a timeout. A board that fails is a
  lab fault: the run leaves it out instead of failing its tests;
- ``hil.farm.cli``: ``hil farm up|status|health`` (``python -m hil.farm``), which shows the
  farm of a running bench and the commands that use it; the bench itself (``hil twin up
  --boards N``) already runs the coordinator and the exporter that publish its boards as
  places ``twin-1`` ... ``twin-N``.

This module imports none of its submodules, so the library parts never load the commands.
"""

from __future__ import annotations

import attr

from hil.lab.places import RESERVE_TIMEOUT, PlaceError
from hil.paths import REPO
from hil.suite.env import DEFAULT_COORDINATOR

__all__ = ["DEFAULT_COORDINATOR", "FARM_ENV", "FarmError", "HEALTH_TIMEOUT", "Health", "RESERVE_TIMEOUT",
           "parse_places", "parse_tags"]

HEALTH_TIMEOUT = 600.0
FARM_ENV = REPO / "env" / "farm.yaml"


class FarmError(PlaceError):
    """A farm run cannot be set up as asked; the message says why and what to do."""


@attr.s(frozen=True)
class Health:
    """One place's health check: healthy, or the lab fault that takes it out of the run."""

    place = attr.ib()
    healthy = attr.ib()
    message = attr.ib(default="")  # the fault, when not healthy
    seconds = attr.ib(default=0.0)
    npu_cores = attr.ib(factory=list)


def parse_places(text: str | None) -> list[str]:
    places = [p.strip() for p in (text or "").replace(" ", ",").split(",") if p.strip()]
    dupes = sorted({p for p in places if places.count(p) > 1})
    if dupes:
        raise FarmError(f"places listed twice: {', '.join(dupes)}")
    return places


def parse_tags(text: str | None) -> dict[str, str]:
    tags = {}
    for pair in (text or "").replace(" ", ",").split(","):
        if not pair.strip():
            continue
        key, sep, value = pair.strip().partition("=")
        if not sep or not key or not value:
            raise FarmError(f"place tag {pair!r} must be KEY=VALUE, e.g. board=rk3576")
        tags[key] = value
    return tags
