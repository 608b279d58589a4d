"""Golden answers: what a reference run answered, per model and runtime.

Greedy decoding (the demos set ``top_k = 1``) makes an answer a function of model, runtime
and prompt, so ``images/golden/<model>.yaml`` keeps the answer a reference run gave for each
runtime; a different answer on a board under test is a finding, even when the keywords are
still there. One ``GoldenAnswers`` is read per run and asked by every check.
"""

from __future__ import annotations

from pathlib import Path

import attr
import yaml

from hil.paths import IMAGES_DIR

GOLDEN_DIR = IMAGES_DIR / "golden"


def normalize(answer: str) -> str:
    """Answers compare with runs of white space folded (line wrapping is not a change)."""
    return " ".join(answer.split())


@attr.s(frozen=True)
class GoldenAnswers:
    """The recorded answers of one model on one runtime (empty when none are recorded)."""

    model = attr.ib()
    runtime = attr.ib()
    answers = attr.ib(factory=dict, repr=False)  # {"text": {prompt id: answer}, "image": {picture: {id: answer}}}

    @classmethod
    def load(cls, model: str, runtime: str, directory: Path = GOLDEN_DIR) -> "GoldenAnswers":
        path = Path(directory) / f"{model}.yaml"
        data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}
        return cls(model=model, runtime=runtime, answers=(data.get("runtimes") or {}).get(runtime) or {})

    @property
    def recorded(self) -> bool:
        return bool(self.answers)

    def text(self, prompt_id: str) -> str | None:
        return (self.answers.get("text") or {}).get(prompt_id)

    def picture(self, picture: str) -> dict | None:
        """``{prompt id: answer}`` for one picture, or None."""
        return (self.answers.get("image") or {}).get(picture)

    def image(self, picture: str, prompt_id: str) -> str | None:
        return (self.picture(picture) or {}).get(prompt_id)

    @staticmethod
    def differs(answer: str, golden: str | None) -> bool:
        """A recorded answer that the given one is not (None: nothing to compare with)."""
        return golden is not None and normalize(answer) != normalize(golden)
