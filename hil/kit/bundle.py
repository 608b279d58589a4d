"""The host side of a deploy: the runtime bundle and the models a run puts on a board.

A models directory (``--models-dir``) holds everything the suite deploys::

    runtime/runtime.yaml            what the bundle is (see RuntimeBundle)
    runtime/demo_Linux_aarch64/     the SDK demo build: imgenc, demo (llm up to 1.2.1), lib/
    <model>/model.json              what the model is (see ModelFiles)
    <model>/<model>.rkllm           the LLM, converted by rkllm-toolkit
    <model>/<model>-vision.rknn     its vision encoder, converted by rknn-toolkit2

``runtime.yaml`` and ``model.json`` are written by whoever builds the demo and converts the
models; the suite checks them against the board and against the logs, and refuses a
directory that is incomplete with a message that says what is missing.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

import attr
import yaml

from hil.rockchip.checks import ModelInfo

RUNTIME_DIR = "runtime"
DEMO_DIR = "demo_Linux_aarch64"


class KitError(ValueError):
    """A models directory that cannot be deployed as it is."""


@attr.s(frozen=True)
class RuntimeBundle:
    """The demo build and the runtime libraries it ships in ``lib/``.

    ``demo_embed_size``: the EMBED_SIZE the demo was compiled with. When absent, the
    configuration check assumes the SDK's build of ``demo_version``: 1536, hard-coded up to
    1.2.1; from 1.2.2 the demo takes it from the encoder's output tensor.
    """

    root = attr.ib()  # the runtime/ directory
    rkllm_runtime = attr.ib()
    rknn_runtime = attr.ib()
    demo_version = attr.ib()
    demo_embed_size = attr.ib(default=None)

    @property
    def demo_dir(self) -> Path:
        return self.root / DEMO_DIR

    def files(self) -> dict[str, Path]:
        """Relative path on the board -> local file."""
        return {f"{DEMO_DIR}/{p.relative_to(self.demo_dir).as_posix()}": p
                for p in sorted(self.demo_dir.rglob("*")) if p.is_file()}


@attr.s(frozen=True)
class ModelFiles:
    name = attr.ib()
    root = attr.ib()
    info = attr.ib()  # hil.rockchip.checks.ModelInfo
    meta = attr.ib(repr=False)  # model.json as read
    llm = attr.ib()
    vision = attr.ib()

    def rel(self, path: Path) -> str:
        """A file's path on the board, relative to the deploy folder."""
        return f"models/{self.name}/{path.name}"

    def files(self) -> dict[str, Path]:
        return {self.rel(p): p for p in (self.llm, self.vision) if p is not None}


@attr.s(frozen=True)
class DeployKit:
    root = attr.ib()
    runtime = attr.ib()

    def model_names(self) -> list[str]:
        return sorted(p.parent.name for p in self.root.glob("*/model.json"))

    def model(self, name: str) -> ModelFiles:
        directory = self.root / name
        meta_path = directory / "model.json"
        if not meta_path.is_file():
            known = ", ".join(self.model_names()) or "none"
            raise KitError(f"model {name!r} not found in {self.root} (no {name}/model.json); models there: {known}")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise KitError(f"{meta_path} is not readable JSON: {e}") from e
        files = meta.get("files") or {}
        paths = {}
        for role in ("llm", "vision"):
            rel = (files.get(role) or {}).get("path")
            if rel is None:
                if role == "llm":
                    raise KitError(f"{meta_path}: files.llm.path is missing")
                paths[role] = None
                continue
            path = directory / rel
            if not path.is_file():
                raise KitError(f"{meta_path} names {rel}, which is not in {directory}")
            paths[role] = path
        return ModelFiles(name=name, root=directory, info=ModelInfo.from_json(meta), meta=meta,
                          llm=paths["llm"], vision=paths["vision"])


def load(models_dir: Path | str) -> DeployKit:
    root = Path(models_dir)
    spec_path = root / RUNTIME_DIR / "runtime.yaml"
    if not spec_path.is_file():
        raise KitError(f"{root} is not a models directory: {RUNTIME_DIR}/runtime.yaml is missing "
                       f"(it names the rkllm/rknn runtime versions of the demo build beside it)")
    try:
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise KitError(f"{spec_path} is not readable YAML: {e}") from e
    missing = [k for k in ("rkllm_runtime", "rknn_runtime", "demo_version") if not spec.get(k)]
    if missing:
        raise KitError(f"{spec_path}: missing {', '.join(missing)}")
    runtime = RuntimeBundle(root=root / RUNTIME_DIR, rkllm_runtime=str(spec["rkllm_runtime"]),
                            rknn_runtime=str(spec["rknn_runtime"]), demo_version=str(spec["demo_version"]),
                            demo_embed_size=spec.get("demo_embed_size"))
    if not (runtime.demo_dir / "demo").is_file():
        raise KitError(f"{runtime.demo_dir}/demo is missing: put the SDK's demo_Linux_aarch64 build there")
    return DeployKit(root=root, runtime=runtime)


@attr.s(frozen=True)
class DeployLayout:
    """Where the bundle lands on the board, under the target option ``deploy_dir``::

        demo_Linux_aarch64/   the demo build with lib/
        models/<model>/       the .rkllm and the vision .rknn
        pictures/             the multimodal test pictures

    Every remote path the suite uses is derived here, from the same relative paths that
    ``files`` hands to the deploy.
    """

    remote_dir = attr.ib()
    kit = attr.ib(repr=False)  # DeployKit
    model = attr.ib(repr=False)  # ModelFiles
    pictures = attr.ib(repr=False, factory=dict)  # picture file name -> local Path

    def files(self) -> dict[str, Path]:
        """Relative path on the board -> local file: the whole bundle of one run."""
        return {**self.kit.runtime.files(), **self.model.files(),
                **{self.picture_rel(name): path for name, path in self.pictures.items()}}

    def path(self, rel: str) -> str:
        return posixpath.join(self.remote_dir, rel)

    @staticmethod
    def picture_rel(name: str) -> str:
        return f"pictures/{name}"

    @property
    def demo_dir(self) -> str:
        return self.path(DEMO_DIR)

    @property
    def llm(self) -> str:
        return self.path(self.model.rel(self.model.llm))

    @property
    def vision(self) -> str | None:
        return self.path(self.model.rel(self.model.vision)) if self.model.vision is not None else None

    def picture(self, name: str) -> str:
        return self.path(self.picture_rel(name))
