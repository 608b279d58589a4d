"""The long tests' configuration: how many cycles, how long a soak and a stress, and which long
tests a run chose.

A qualification run stays short unless asked: a test marked ``endurance``, ``soak`` or
``stress`` runs only when the run names its marker with ``-m`` (``-m endurance``, ``-m "soak or
stress"``) or gives its option (``--power-cycles 200`` runs the power-cycle test). The counts
and durations have defaults that make a meaningful run (200 faultless cycles give the success
rate a 95 % lower bound of 98.1 %, above the default limit of 98 %; a two-hour soak shows a
leak of a few MiB per hour).
"""

from __future__ import annotations

import re

import attr

LONG_MARKERS = {
    "endurance": "power cycles (--power-cycles N) and warm reboots (--reboots N), and power cuts during writes",
    "soak": "inference in a loop for --soak-duration, watched for leaks, drift and throttling",
    "stress": "stressapptest and memtester beside NPU inference for --stress-duration",
}
DEFAULT_POWER_CYCLES = 200
DEFAULT_REBOOTS = 200
DEFAULT_POWER_CUTS = 10
DEFAULT_SOAK_S = 2 * 3600.0
DEFAULT_STRESS_S = 3600.0
DEFAULT_BOOT_TIMEOUT_S = 180.0
DEFAULT_SILENCE_S = 60.0
DEFAULT_STRESS_MIB = 256
#: The option that chooses each long test by itself, by the test's ``long_test`` marker argument.
OPTION_OF = {"power_cycles": "--power-cycles", "reboots": "--reboots", "power_cuts": "--power-cuts",
             "soak": "--soak-duration", "stress": "--stress-duration"}

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smh]?)")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


class EnduranceError(ValueError):
    """A count or duration the run cannot start with."""


def parse_duration(text: str, option: str = "duration") -> float:
    """Seconds of ``90``, ``90s``, ``15m``, ``2h``, ``1.5h`` or ``1h30m`` (parts add up)."""
    value = str(text).strip().lower()
    parts = list(_DURATION.finditer(value))
    if not parts or "".join(m[0] for m in parts).replace(" ", "") != value.replace(" ", ""):
        raise EnduranceError(f"{option} {text!r}: not a duration; write it as 90s, 15m, 2h or 1h30m")
    seconds = sum(float(m[1]) * _UNIT_S[m[2]] for m in parts)
    if seconds <= 0:
        raise EnduranceError(f"{option} {text!r}: must be longer than 0 s")
    return seconds


def _count(value, option: str, default: int) -> int:
    if value is None:
        return default
    if int(value) < 1:
        raise EnduranceError(f"{option} must be at least 1, not {value}")
    return int(value)


def _seconds(target_options: dict, key: str, default: float) -> float:
    value = target_options.get(key, default)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0:
        raise EnduranceError(f"target option {key}: {value!r} is not a number above 0")
    return seconds


@attr.s(frozen=True)
class EnduranceConfig:
    power_cycles = attr.ib(default=DEFAULT_POWER_CYCLES)
    reboots = attr.ib(default=DEFAULT_REBOOTS)
    power_cuts = attr.ib(default=DEFAULT_POWER_CUTS)
    soak_s = attr.ib(default=DEFAULT_SOAK_S)
    stress_s = attr.ib(default=DEFAULT_STRESS_S)
    given = attr.ib(factory=frozenset)  # the keys of OPTION_OF given on the command line
    boot_timeout_s = attr.ib(default=DEFAULT_BOOT_TIMEOUT_S)  # a cycle's power-on to login prompt
    silence_s = attr.ib(default=DEFAULT_SILENCE_S)  # console silence that counts a boot as hung
    stress_mib = attr.ib(default=DEFAULT_STRESS_MIB)  # stressapptest's memory; memtester gets a quarter
    stress_tools = attr.ib(default=None)  # a board folder of static stressapptest/memtester builds

    @classmethod
    def from_options(cls, options, target_options: dict | None = None) -> "EnduranceConfig":
        """From pytest's ``config.option`` (attributes power_cycles, reboots, power_cuts,
        soak_duration, stress_duration; None when not given) and the env's target options
        ``boot_timeout`` and ``console_silence_timeout`` (seconds; a board whose kernel boots
        ``quiet`` may need a longer silence), ``stress_memory_mib`` and ``stress_tools``."""
        target_options = target_options or {}
        get = lambda name: getattr(options, name, None)  # noqa: E731
        given = {key for key, name in (("power_cycles", "power_cycles"), ("reboots", "reboots"),
                                       ("power_cuts", "power_cuts"), ("soak", "soak_duration"),
                                       ("stress", "stress_duration")) if get(name) is not None}
        return cls(power_cycles=_count(get("power_cycles"), "--power-cycles", DEFAULT_POWER_CYCLES),
                   reboots=_count(get("reboots"), "--reboots", DEFAULT_REBOOTS),
                   power_cuts=_count(get("power_cuts"), "--power-cuts", DEFAULT_POWER_CUTS),
                   soak_s=parse_duration(get("soak_duration"), "--soak-duration") if get("soak_duration")
                   else DEFAULT_SOAK_S,
                   stress_s=parse_duration(get("stress_duration"), "--stress-duration") if get("stress_duration")
                   else DEFAULT_STRESS_S,
                   given=frozenset(given),
                   boot_timeout_s=_seconds(target_options, "boot_timeout", DEFAULT_BOOT_TIMEOUT_S),
                   silence_s=_seconds(target_options, "console_silence_timeout", DEFAULT_SILENCE_S),
                   stress_mib=int(_seconds(target_options, "stress_memory_mib", DEFAULT_STRESS_MIB)),
                   stress_tools=target_options.get("stress_tools"))

    def chosen(self, marker: str, key: str, markexpr: str) -> bool:
        """Whether a long test (its marker, its ``OPTION_OF`` key) runs: its option was given, or
        ``-m`` names its marker."""
        return key in self.given or re.search(rf"\b{re.escape(marker)}\b", markexpr or "") is not None
