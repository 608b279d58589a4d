"""The fixed prompts of the answer checks (``images/prompts.yaml``) and their keywords;
their golden answers are in ``hil.kit.golden``."""

from __future__ import annotations

from pathlib import Path

import attr
import yaml

from hil.paths import IMAGES_DIR

PROMPTS_FILE = IMAGES_DIR / "prompts.yaml"


@attr.s(frozen=True)
class Prompt:
    id = attr.ib()
    kind = attr.ib()  # "text" or "image"
    text = attr.ib()
    keywords = attr.ib(factory=tuple)  # text prompts: every keyword must be in the answer
    keywords_from = attr.ib(default=None)  # image prompts: which keyword list of the picture
    menu = attr.ib(default=None)


def load(path: Path = PROMPTS_FILE) -> list[Prompt]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return [Prompt(id=p["id"], kind=p["kind"], text=p["text"], keywords=tuple(p.get("keywords") or ()),
                   keywords_from=p.get("keywords_from"), menu=p.get("menu")) for p in data["prompts"]]


def text_prompts() -> list[Prompt]:
    """The free-form English text prompts (the menu prompts belong to the SDK demos' menus)."""
    return [p for p in load() if p.kind == "text" and not p.menu]


def image_prompts() -> list[Prompt]:
    return [p for p in load() if p.kind == "image"]


def missing_keywords(answer: str, keywords) -> list[str]:
    low = answer.lower()
    return [k for k in keywords if str(k).lower() not in low]
