"""The host side of a deploy: the SDK's demo build and the models, as they lie on a vendor's disk.

The demo build (``--demo-dir``) is the folder the RKLLM SDK installs,
``deploy/install/demo_Linux_aarch64/``::

    demo, imgenc, llm (up to 1.2.1)   the demo binaries
    lib/librkllmrt.so, lib/librknnrt.so

Its runtime versions are read from the libraries' strings (``hil.rockchip.versions``); the
demo's version is its SDK release, the version of the ``librkllmrt.so`` it ships. An optional
``runtime.yaml`` (in the folder, or beside it as the older ``runtime/`` layout has it) says
what the files cannot: ``rkllm_runtime``, ``rknn_runtime``, ``demo_version``,
``demo_embed_size``; the board confirms the versions when the model is first loaded.

A model is an ``.rkllm`` and, for a vision-language model, its vision encoder ``.rknn``, as
Rockchip's model zoo names them (``qwen2.5-vl-3b-w4a16_level1_rk3576.rkllm`` with
``qwen2_5_vl_3b_vision_rk3576.rknn``): given one by one (``--llm``, ``--vision``) or as a
folder of several (``--models-dir``: the folder and its subfolders), where each ``.rkllm`` is
paired with the encoder whose name it starts with (``pair``), or as an optional
``models.yaml`` says::

    models:
      my-model:                  # the name the suite gives it (default: the .rkllm's stem)
        llm: my-model.rkllm
        vision: my-encoder.rknn  # omitted for a text-only LLM
        image_tokens: 196        # overrides of what the files cannot say (here: an encrypted encoder)
        embed_size: 1536

A model's name is its ``.rkllm`` stem, the same however it is given, so limits, golden
answers and baselines follow the file. What the suite knows of a model comes from its files
(the ``.rknn`` container, the ``.rkllm`` footer) and, on the board, from the runtime's own
init lines (``hil.suite.inference.probe_model``); never from a hand-written description.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import attr
import yaml

from hil.rockchip import rkllmfile, rknnfile
from hil.rockchip.checks import ModelInfo
from hil.rockchip.versions import library_version

DEMO_DIR = "demo_Linux_aarch64"
RUNTIME_YAML = "runtime.yaml"
MODELS_YAML = "models.yaml"
OVERRIDES = ("embed_size", "image_tokens")  # what a models.yaml entry may say of a model


class KitError(ValueError):
    """A demo build or a model that cannot be deployed as it is."""


def _yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise KitError(f"{path} is not readable YAML: {e}") from e
    if not isinstance(data, dict):
        raise KitError(f"{path} must be a mapping, got {type(data).__name__}")
    return data


@attr.s(frozen=True)
class RuntimeBundle:
    """The demo build and the runtime libraries it ships in ``lib/``.

    ``demo_embed_size``: the EMBED_SIZE the demo was compiled with, when ``runtime.yaml`` says;
    otherwise the configuration check assumes the SDK's build of ``demo_version`` (1536 up to
    1.2.1; from 1.2.2 the demo takes it from the encoder's output tensor). ``sources``: where
    each version came from, for messages.
    """

    demo_dir = attr.ib(converter=Path)
    rkllm_runtime = attr.ib()
    rknn_runtime = attr.ib()
    demo_version = attr.ib()
    demo_embed_size = attr.ib(default=None)
    sources = attr.ib(factory=dict)

    def files(self) -> dict[str, Path]:
        """Relative path on the board -> local file."""
        return {f"{DEMO_DIR}/{p.relative_to(self.demo_dir).as_posix()}": p
                for p in sorted(self.demo_dir.rglob("*")) if p.is_file() and p.name != RUNTIME_YAML}


def load_runtime(demo_dir: Path | str) -> RuntimeBundle:
    """The SDK's ``demo_Linux_aarch64`` folder, its versions read from its libraries."""
    demo_dir = Path(demo_dir).expanduser()
    if not demo_dir.is_dir():
        raise KitError(f"{demo_dir} is not a folder: pass the SDK's deploy/install/{DEMO_DIR} build")
    if not (demo_dir / "demo").is_file():
        raise KitError(f"{demo_dir} has no 'demo' binary: pass the SDK's deploy/install/{DEMO_DIR} "
                       "(build it with the SDK's build-linux.sh)")
    overrides = {}
    for candidate in (demo_dir / RUNTIME_YAML, demo_dir.parent / RUNTIME_YAML):
        if candidate.is_file():
            overrides = _yaml(candidate)
            break
    versions, sources = {}, {}
    for key, lib in (("rkllm_runtime", "librkllmrt.so"), ("rknn_runtime", "librknnrt.so")):
        found = library_version(demo_dir / "lib" / lib) if (demo_dir / "lib" / lib).is_file() else None
        declared = str(overrides[key]) if overrides.get(key) else None
        if found is not None and declared is not None and declared != found.version:
            raise KitError(f"{RUNTIME_YAML} says {key} {declared} but {demo_dir}/lib/{lib} is {found.version}: "
                           f"the library is what runs; remove {key} from {RUNTIME_YAML} or fix it")
        if found is not None:  # the file first; runtime.yaml only says what the file cannot
            versions[key], sources[key] = found.version, f"lib/{lib}"
        elif declared is not None:
            versions[key], sources[key] = declared, f"{RUNTIME_YAML} ({key})"
        else:
            versions[key] = None
    if versions["rkllm_runtime"] is None:
        where = ("has no version string" if (demo_dir / "lib" / "librkllmrt.so").is_file()
                 else "is missing (the SDK installs it beside the demo)")
        raise KitError(f"{demo_dir}/lib/librkllmrt.so {where}: write {demo_dir / RUNTIME_YAML} with "
                       "'rkllm_runtime: X.Y.Z' (the SDK release the demo was built from)")
    demo_version = str(overrides.get("demo_version") or versions["rkllm_runtime"])
    sources["demo_version"] = f"{RUNTIME_YAML} (demo_version)" if overrides.get("demo_version") else \
        f"the SDK release of {sources['rkllm_runtime']}"
    embed = overrides.get("demo_embed_size")
    return RuntimeBundle(demo_dir=demo_dir, rkllm_runtime=versions["rkllm_runtime"],
                         rknn_runtime=versions["rknn_runtime"], demo_version=demo_version,
                         demo_embed_size=int(embed) if embed is not None else None, sources=sources)


@attr.s(frozen=True)
class ModelFiles:
    """One model as read from its files: the LLM's footer and the encoder's container."""

    name = attr.ib()
    llm = attr.ib()  # Path of the .rkllm
    vision = attr.ib()  # Path of the .rknn, or None for a text-only LLM
    llm_file = attr.ib(repr=False)  # hil.rockchip.rkllmfile.RkllmFile
    vision_file = attr.ib(repr=False)  # hil.rockchip.rknnfile.RknnFile or None
    overrides = attr.ib(factory=dict)

    @property
    def info(self) -> ModelInfo:
        """What the host knows before the board loads the model: the encoder's output
        ``[image tokens, embed size]`` and target platform; the rest comes from the runtime."""
        tokens = embed = None
        platforms = None
        if self.vision_file is not None:
            platforms = tuple(self.vision_file.target_platform) or None
            outputs = self.vision_file.outputs
            if outputs and len(outputs[0].shape) >= 2:
                tokens, embed = outputs[0].shape[-2], outputs[0].shape[-1]
        return ModelInfo(name=self.name, embed_size=self.overrides.get("embed_size", embed),
                         image_tokens=self.overrides.get("image_tokens", tokens), vision_platforms=platforms)

    def rel(self, path: Path) -> str:
        """A file's path on the board, relative to the deploy folder."""
        return f"models/{self.name}/{path.name}"

    def files(self) -> dict[str, Path]:
        return {self.rel(p): p for p in (self.llm, self.vision) if p is not None}


def read_model(llm: Path | str, vision: Path | str | None = None, name: str | None = None,
               overrides: dict | None = None) -> ModelFiles:
    """A model from its files; a file that is not what it should be is a KitError naming it."""
    llm = Path(llm).expanduser()
    vision = Path(vision).expanduser() if vision is not None else None
    try:
        llm_file = rkllmfile.read_rkllm(llm)
        vision_file = rknnfile.read_rknn(vision) if vision is not None else None
    except (rknnfile.ModelFileError, OSError) as e:
        raise KitError(str(e)) from e
    if vision_file is not None and vision_file.format != "rknn":
        raise KitError(f"{vision} is an {vision_file.format.upper()} (RKNX) model: the RK3576 runtime "
                       "(librknnrt 2.x) loads RKNN containers; convert the encoder with rknn-toolkit2")
    unknown = set(overrides or {}) - set(OVERRIDES)
    if unknown:
        raise KitError(f"model {name or llm.stem}: unknown override {', '.join(sorted(unknown))} "
                       f"(known: {', '.join(OVERRIDES)})")
    return ModelFiles(name=name or llm.stem, llm=llm, vision=vision, llm_file=llm_file, vision_file=vision_file,
                      overrides=dict(overrides or {}))


# --- pairing by name ---------------------------------------------------------------------------

_PLATFORM = re.compile(r"rk\d{4}[a-z]?")


def _norm(stem: str) -> str:
    return re.sub(r"[._\s]+", "-", stem.lower())


def pair(llms: list[Path], encoders: list[Path], *, lone: bool = True) -> dict[Path, Path | None]:
    """Each ``.rkllm`` with its encoder, by the model zoo's names: the encoder's name before
    ``vision`` (``qwen2_5_vl_3b`` of ``qwen2_5_vl_3b_vision_rk3576.rknn``) begins the LLM's
    name (``qwen2.5-vl-3b-w4a16_level1_rk3576``), and the platforms in both names agree; the
    longest such beginning wins. One LLM and one encoder in a folder always pair (``lone``). An
    LLM no encoder matches is text-only; two equally good encoders are a KitError (``models.yaml``)."""
    if lone and len(llms) == 1 and len(encoders) == 1:
        return {llms[0]: encoders[0]}
    out = {}
    for llm in llms:
        name = _norm(llm.stem)
        platforms = set(_PLATFORM.findall(name))
        best, score = [], -1
        for enc in encoders:
            prefix, _, rest = _norm(enc.stem).partition("vision")
            prefix = prefix.rstrip("-")
            enc_platforms = set(_PLATFORM.findall(rest))
            if not prefix or not (name == prefix or name.startswith(prefix + "-")) or (
                    platforms and enc_platforms and not platforms & enc_platforms):
                continue
            if len(prefix) > score:
                best, score = [enc], len(prefix)
            elif len(prefix) == score:
                best.append(enc)
        if len(best) > 1:
            raise KitError(f"{llm.name} pairs with {' and '.join(e.name for e in best)} alike: say which in "
                           f"{llm.parent / MODELS_YAML}")
        out[llm] = best[0] if best else None
    return out


@attr.s(frozen=True)
class DeployKit:
    """The demo build and the models a run may deploy."""

    runtime = attr.ib()  # RuntimeBundle
    models = attr.ib(factory=dict)  # name -> ModelFiles
    source = attr.ib(default="")  # where the models came from, for messages

    def model_names(self) -> list[str]:
        return sorted(self.models)

    def model(self, name: str | None, default: str | None = None) -> ModelFiles:
        """``name``; without one, the only model, else ``default`` when it is there."""
        if name is None:
            if len(self.models) == 1:
                return next(iter(self.models.values()))
            if default in self.models:
                return self.models[default]
            raise KitError(f"{self.source} holds {len(self.models)} models ({', '.join(self.model_names())}): "
                           "pick one with --model NAME")
        if name not in self.models:
            known = ", ".join(self.model_names()) or "none"
            raise KitError(f"model {name!r} is not in {self.source}; models there: {known}")
        return self.models[name]


def _folder_models(folder: Path) -> dict[str, ModelFiles]:
    spec_path = folder / MODELS_YAML
    if spec_path.is_file():
        entries = _yaml(spec_path).get("models")
        if not isinstance(entries, dict) or not entries:
            raise KitError(f"{spec_path}: 'models' must map model names to their llm (and vision) files")
        out = {}
        for name, entry in entries.items():
            entry = dict(entry or {})
            if not entry.get("llm"):
                raise KitError(f"{spec_path}: models.{name}.llm is missing (the .rkllm file)")
            files = {role: folder / entry.pop(role) for role in ("llm", "vision") if entry.get(role)}
            for role, path in files.items():
                if not path.is_file():
                    raise KitError(f"{spec_path}: models.{name}.{role} names {path.name}, which is not in {folder}")
            entry.pop("vision", None)
            out[str(name)] = read_model(files["llm"], files.get("vision"), name=str(name), overrides=entry)
        return out
    llms = sorted(folder.glob("*.rkllm"))
    return {m.name: m for m in (read_model(llm, enc) for llm, enc in pair(llms, sorted(folder.glob("*.rknn"))).items())}


def load_models(models_dir: Path | str) -> dict[str, ModelFiles]:
    """Every model of a folder and of its subfolders (one level, as model zoo downloads lie)."""
    root = Path(models_dir).expanduser()
    if not root.is_dir():
        raise KitError(f"{root} is not a folder (--models-dir: a folder of .rkllm / .rknn models)")
    found: dict[str, ModelFiles] = {}
    for folder in [root] + sorted(p for p in root.iterdir() if p.is_dir()):
        for name, model in _folder_models(folder).items():
            if name in found:
                raise KitError(f"two models named {name!r}: {found[name].llm} and {model.llm}; name them in "
                               f"a {MODELS_YAML}")
            found[name] = model
    if not found:
        raise KitError(f"{root} holds no .rkllm model (nor do its subfolders): put the model zoo's .rkllm "
                       "and .rknn files there")
    return found


def load(demo_dir: Path | str, models_dir: Path | str) -> DeployKit:
    """A demo build and a folder of models."""
    return DeployKit(runtime=load_runtime(demo_dir), models=load_models(models_dir), source=str(models_dir))


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
