"""Configuration checks run before any inference: a model, a run and a demo build that cannot
work on a board are refused up front with the cause and the fix, instead of surfacing as an
init failure, a segfault or a silently slower run (rockchip.md §2, §3.2, §3.4, §7).

``check_run`` returns one ``ConfigProblem`` per failed check; ``check`` is a stable identifier
(``CHECKS``) that results and reports may key on.
"""

from __future__ import annotations

import attr

from hil.rockchip.versions import IMAGE_TOKENS, RK3576, version_key

@attr.s(frozen=True)
class ConfigProblem:
    check = attr.ib()
    message = attr.ib()


@attr.s(frozen=True, kw_only=True)
class BoardInfo:
    """The board as it runs: its SoC, its NPU cores, and the RKLLM runtime it loaded for the
    bundle's demo (None until the model was first loaded)."""

    soc = attr.ib(default=RK3576.soc)
    npu_cores = attr.ib(default=RK3576.npu_cores)
    rkllm_runtime = attr.ib(default=None)


@attr.s(frozen=True, kw_only=True)
class ModelInfo:
    """An LLM (.rkllm) and its vision encoder (.rknn), as their files and the runtime that
    loaded them tell. None: not known, and the checks that need it are skipped.

    From the ``.rknn`` container: ``embed_size`` and ``image_tokens`` (its output
    ``[tokens, embed]``) and ``vision_platforms``. From the runtime's init lines:
    ``target_platform``, ``npu_core_num``, ``max_context_limit``, and ``refused``, the
    runtime's own words when it did not load the model."""

    name = attr.ib(default=None)
    target_platform = attr.ib(default=None)  # rkllm-toolkit target, e.g. "RK3576"
    npu_core_num = attr.ib(default=None)
    max_context_limit = attr.ib(default=None)
    embed_size = attr.ib(default=None)  # the vision encoder's output (tokens, embed size)
    image_tokens = attr.ib(default=None)
    vision_platforms = attr.ib(default=None)  # the .rknn's target_platform, lower case
    refused = attr.ib(default=None)


@attr.s(frozen=True, kw_only=True)
class RunConfig:
    """The demo arguments of one run and what its longest prompt costs.

    ``prompt_tokens``: the text with its chat template; ``image_tokens``: what the picture adds
    (0 for a text run; None: a picture of unknown size, counted as the model's image tokens or
    196, Qwen2-VL at 392x392). ``rknn_core_num`` is None for demos without that argument
    (1.2.0 and older)."""

    max_context_len = attr.ib()
    max_new_tokens = attr.ib()
    prompt_tokens = attr.ib(default=0)
    image_tokens = attr.ib(default=0)
    rknn_core_num = attr.ib(default=None)


@attr.s(frozen=True, kw_only=True)
class DemoBuild:
    """The SDK demo build. ``embed_size``: the EMBED_SIZE compiled in, or None when the demo
    reads it from the encoder's output tensor (1.2.2 and later); ``assumed``: taken from the
    SDK's sources for ``version`` (a binary does not tell), not declared by its builder.
    ``rkllm_runtime``: the version of the ``librkllmrt.so`` the bundle ships, and ``source``
    where that was read."""

    version = attr.ib(default=None)
    embed_size = attr.ib(default=None)
    assumed = attr.ib(default=False)
    rkllm_runtime = attr.ib(default=None)
    source = attr.ib(default=None)

    @classmethod
    def for_version(cls, version: str, **kw) -> "DemoBuild":
        """The 1.2.0/1.2.1 demos ``#define EMBED_SIZE 1536`` (rknn-llm #336, #341); the 1.1.4
        demo is taken to do the same [infer, as the twin's stand-in does]."""
        embed = 1536 if version_key(version) < version_key("1.2.2") else None
        return cls(version=version, embed_size=embed, assumed=embed is not None, **kw)


def core_mask(rknn_core_num: int) -> int:
    """The mask the demo's image encoder passes to ``rknn_set_core_mask``: 2 -> cores 0-1 (3),
    3 -> cores 0-2 (7), anything else -> RKNN_NPU_CORE_AUTO (0)."""
    return {2: 0b11, 3: 0b111}.get(rknn_core_num, 0)


def _runtime_words(model) -> str:
    return f" (the runtime: {model.refused!r})" if model.refused else ""


def _platform_refusal(refused: str | None) -> bool:
    return bool(refused) and "platform" in refused.lower()


def _target_platform(board, model, run, demo):
    if model.target_platform and model.target_platform.upper() != board.soc.upper():
        return (f"the model was converted for {model.target_platform.upper()} (rkllm-toolkit target_platform) but the "
                f"board is {board.soc}: rkllm_init fails{_runtime_words(model)}. Convert it again with "
                f"target_platform='{board.soc.lower()}'")
    if _platform_refusal(model.refused):
        return (f"the runtime refused the model for its target platform on this {board.soc}: {model.refused!r}. "
                f"Convert it again with target_platform='{board.soc.lower()}'")


def _vision_platform(board, model, run, demo):
    if run.image_tokens == 0 or not model.vision_platforms or board.soc.lower() in model.vision_platforms:
        return None
    return (f"the vision encoder was converted for {', '.join(p.upper() for p in model.vision_platforms)} (its .rknn's "
            f"target_platform) but the board is {board.soc}: rknn_init refuses it. Convert it again with "
            f"rknn-toolkit2, target_platform='{board.soc.lower()}'")


def _model_init(board, model, run, demo):
    if not model.refused or _platform_refusal(model.refused) or "max_context" in model.refused:
        return None
    return (f"the board's runtime did not load the model: {model.refused!r}. Check that the .rkllm is whole "
            "(its size and checksum against the download) and was converted by an rkllm-toolkit this runtime "
            "reads")


def _runtime_version(board, model, run, demo):
    if not (board.rkllm_runtime and demo.rkllm_runtime) or board.rkllm_runtime == demo.rkllm_runtime:
        return None
    return (f"the bundle ships librkllmrt {demo.rkllm_runtime} ({demo.source or 'lib/librkllmrt.so'}) but the board's "
            f"runtime says {board.rkllm_runtime}: the demo loads another librkllmrt.so (LD_LIBRARY_PATH, or "
            "/usr/lib when lib/ lacks it), so the run would not qualify the bundle. Deploy the SDK's lib/ with "
            "the demo, or fix the version in runtime.yaml")


def _npu_core_num(board, model, run, demo):
    if model.npu_core_num is not None and model.npu_core_num > board.npu_cores:
        return (f"the model was converted for {model.npu_core_num} NPU cores (npu_core_num) but the {board.soc} NPU "
                f"has {board.npu_cores}: convert it again with num_npu_core={board.npu_cores} "
                f"(range 1-{board.npu_cores})")


def _rknn_core_num(board, model, run, demo):
    if run.rknn_core_num is None:
        return None
    mask = core_mask(run.rknn_core_num)
    if mask >> board.npu_cores:
        return (f"rknn_core_num {run.rknn_core_num} asks rknn_set_core_mask for mask {mask} but the {board.soc} NPU "
                f"has {board.npu_cores} cores (max mask {(1 << board.npu_cores) - 1}): the demo ignores the error "
                f"and encodes the image on the default core, slower. Pass rknn_core_num {board.npu_cores}")


def _max_context_limit(board, model, run, demo):
    if model.max_context_limit is not None and run.max_context_len > model.max_context_limit:
        return (f"max_context_len {run.max_context_len} is above the model's max_context_limit "
                f"{model.max_context_limit}: rkllm_init fails ('max_context[{run.max_context_len}] must be less than "
                f"the model's max_context_limit[{model.max_context_limit}]'){_runtime_words(model)}. Pass at most "
                f"{model.max_context_limit}, or convert the model with a larger max_context")


def _context_budget(board, model, run, demo):
    image = run.image_tokens if run.image_tokens is not None else (model.image_tokens or IMAGE_TOKENS)
    needed = run.prompt_tokens + image + run.max_new_tokens
    if needed > run.max_context_len:
        return (f"max_context_len {run.max_context_len} is below prompt {run.prompt_tokens} + image {image} + "
                f"max_new_tokens {run.max_new_tokens} = {needed} tokens: a prompt that does not fit fails ('prompt "
                f"gather than max context') and a long answer is cut. Raise max_context_len to at least {needed} or "
                f"lower max_new_tokens")


def _embed_size(board, model, run, demo):
    if demo.embed_size is None or model.embed_size is None or demo.embed_size == model.embed_size:
        return None
    effect = ("the output overflows the demo's img_vec buffer and it segfaults" if model.embed_size > demo.embed_size
              else "the LLM reads wrong image embeddings")
    built = f"the {demo.version} demo" if demo.version else "the demo"
    how = (f" (assumed: the SDK's {demo.version} demo sources #define EMBED_SIZE {demo.embed_size}, which a binary "
           "does not show; set demo_embed_size in runtime.yaml if yours was rebuilt)" if demo.assumed else "")
    return (f"{built} is built with EMBED_SIZE {demo.embed_size}{how} but the vision encoder outputs embeddings of "
            f"{model.embed_size} (its .rknn's output shape): {effect}. Use a 1.2.2+ demo (it reads the size from "
            f"the tensor) or rebuild it with EMBED_SIZE {model.embed_size}")


_RULES = {
    "runtime_version": _runtime_version,
    "model_init": _model_init,
    "target_platform": _target_platform,
    "vision_platform": _vision_platform,
    "npu_core_num": _npu_core_num,
    "rknn_core_num": _rknn_core_num,
    "max_context_limit": _max_context_limit,
    "context_budget": _context_budget,
    "embed_size": _embed_size,
}
CHECKS = tuple(_RULES)


def check_run(board: BoardInfo, model: ModelInfo, run: RunConfig, demo: DemoBuild) -> list[ConfigProblem]:
    """Every check that fails, in ``CHECKS`` order; an empty list means the run can go ahead."""
    problems = []
    for name, rule in _RULES.items():
        message = rule(board, model, run, demo)
        if message:
            problems.append(ConfigProblem(name, message))
    return problems
