"""Synthetic RKLLM / RKNN model files for the virtual bench (never weights).

A twin model is what the suite deploys to the twin in place of a real Qwen2-VL model: an
``.rkllm`` LLM file and its ``.rknn`` vision encoder, named as Rockchip's model zoo names
them (``qwen2-vl-2b-instruct_w4a16_rk3576.rkllm`` with ``qwen2_vl_2b_vision_rk3576.rknn``),
small (a few hundred KiB to 2 MiB) and byte-for-byte deterministic, so deploy, checksum and
load paths are exercised for real. Both take the real files' layouts
(model-files.md), so the suite reads them with the readers it uses on
real files and learns nothing from them that a real file would not tell:

``.rknn``: the real container, version 6: ``RKNN`` + 4 zero bytes, u64 version, u64 blob
size N, 40 zero bytes, the blob (a FlatBuffer identifier ``RKNN`` and deterministic filler),
u64 JSON size M, then the trailing JSON (sorted keys, compact, as rknn-toolkit2 writes it)
with ``version``, ``target_platform``, ``norm_tensor`` and ``graph``. The demo stand-in
reads the encoder's tensors and platform from that JSON, as the suite does.

``.rkllm``: the real file's only readable part is its ASCII footer at the very end,
``rkllm-toolkit version: X.Y.Z`` (with a NUL before 1.3, as the one public 1.1.4 file shows).
Everything the stand-in needs beyond it (what the real runtime would de-obfuscate: platform,
context limit, cores, dtype, and the twin's answers) sits in a private section at the start
that the suite never reads: ``key=value`` lines between the line ``RKLLM-TWIN`` and a line
``end``, NUL padding to a 4 KiB boundary, then filler up to the footer. The suite learns
those facts from the stand-in's init lines, exactly as from a real runtime. Section lines::

    RKLLM-TWIN
    format=2                       model format: 1 = toolkit 1.1.x, 2 = 1.2.x, 3 = 1.3.x
    toolkit_version=1.2.1
    target_platform=RK3576
    max_context_limit=4096
    npu_core_num=2
    model_dtype=W4A16
    family=qwen2-vl-2b
    ...
    @<TAB>t<TAB><sha256 prompt><TAB>-<TAB><sel><TAB><tok><US><tok>...   text answer
    @<TAB>i<TAB><sha256 picture><TAB><sha256 prompt>|*<TAB><sel><TAB><tokens>   picture answer
    end

The section has no NUL byte (busybox awk ends a line there) and fits in ``HEADER_LIMIT``.
``sel`` is ``*`` or a runtime series (``1.1``, ``1.3``): the stand-in prefers the entry for
its runtime series, so answers differ slightly between runtimes and quantizations, as real
greedy outputs do. Prompts are hashed after removing ``<image>``. Tokens are pre-split
(see ``tokenize``); ``\\n`` and ``\\\\`` are escaped.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

import attr

from hil.kit.pictures import PICTURES_DIR

MAGIC_RKLLM = b"RKLLM-TWIN\n"  # the private section's first line (the suite never reads it)
RKNN_MAGIC = b"RKNN\0\0\0\0"
RKNN_CONTAINER_VERSION = 6
FOOTER = "rkllm-toolkit version: {}"
HEADER_LIMIT = 256 * 1024
ALIGN = 4096
IMAGE_TOKENS = 196
IMAGE_SIZE = 392
RKNN_COMPILER = "2.3.2 (e045de294f@2025-04-07T19:48:25)"

EN_IMAGE_PROMPT = "<image>What is in the image?"
ZH_IMAGE_PROMPT = "<image>这张图片中有什么？"
_US = "\x1f"


@attr.s(frozen=True, kw_only=True)
class Family:
    """What a model family fixes: sizes of the LLM and of the vision encoder's output."""

    name = attr.ib()
    display = attr.ib()
    arch = attr.ib()
    hidden_size = attr.ib()  # LLM hidden size == vision encoder output embed size
    num_layers = attr.ib()
    output_name = attr.ib()  # the vision .rknn output tensor name (varies by export)
    llm_kib = attr.ib()
    vision_kib = attr.ib()
    vocab_size = attr.ib(default=151936)


FAMILIES = {
    f.name: f
    for f in (
        Family(name="qwen2-vl-2b", display="Qwen2-VL-2B-Instruct", arch="qwen2_vl", hidden_size=1536,
               num_layers=28, output_name="54127", llm_kib=1280, vision_kib=384),
        Family(name="qwen2.5-vl-3b", display="Qwen2.5-VL-3B-Instruct", arch="qwen2_5_vl", hidden_size=2048,
               num_layers=36, output_name="34548", llm_kib=1792, vision_kib=448),
        Family(name="qwen2-vl-7b", display="Qwen2-VL-7B-Instruct", arch="qwen2_vl", hidden_size=3584,
               num_layers=28, output_name="61035", llm_kib=2048, vision_kib=512),
    )
}


def model_format(toolkit_version: str) -> int:
    """The .rkllm format a toolkit writes: runtimes accept only their own (see the stand-in)."""
    major, minor = (int(x) for x in toolkit_version.split(".")[:2])
    return {(1, 1): 1, (1, 2): 2, (1, 3): 3}.get((major, minor), 0)


@attr.s(frozen=True, kw_only=True)
class ModelSpec:
    """One twin model: an LLM converted by rkllm-toolkit plus its vision encoder."""

    name = attr.ib()
    family = attr.ib(validator=attr.validators.in_(FAMILIES))
    dtype = attr.ib()  # as the toolkit line prints it: W4A16, W4A16_G128, W8A8
    target_platform = attr.ib(default="RK3576")
    npu_core_num = attr.ib(default=2)
    max_context_limit = attr.ib(default=4096)
    toolkit_version = attr.ib(default="1.2.1")
    rknn_toolkit_version = attr.ib(default="2.3.2")

    @property
    def fam(self) -> Family:
        return FAMILIES[self.family]

    @property
    def vision_name(self) -> str:
        """The encoder's file stem as the model zoo names it: ``qwen2_vl_2b_vision_rk3576``."""
        return f"{re.sub(r'[.-]', '_', self.family)}_vision_{self.target_platform.lower()}"

    @property
    def embed_size(self) -> int:
        return self.fam.hidden_size

    def evolve(self, **changes) -> "ModelSpec":
        return attr.evolve(self, **changes)


MODELS = {
    m.name: m
    for m in (
        ModelSpec(name="qwen2-vl-2b-instruct_w4a16_rk3576", family="qwen2-vl-2b", dtype="W4A16"),
        ModelSpec(name="qwen2.5-vl-3b-w4a16_level1_rk3576", family="qwen2.5-vl-3b", dtype="W4A16"),
        ModelSpec(name="qwen2-vl-7b-instruct_w4a16_rk3576", family="qwen2-vl-7b", dtype="W4A16"),
        # Converted for the wrong SoC: the RK3588 has three NPU cores.
        ModelSpec(name="qwen2-vl-2b-instruct_w8a8_rk3588", family="qwen2-vl-2b", dtype="W8A8",
                  target_platform="RK3588", npu_core_num=3),
    )
}

# --- what the models answer -------------------------------------------------------------

TEXT_ANSWERS = {
    "What is the capital of France?": "The capital of France is Paris.",
    "What is an NPU? Answer in one sentence.": (
        "An NPU (Neural Processing Unit) is a specialized processor designed to accelerate neural network "
        "inference, such as image recognition and language models, with high efficiency and low power consumption."
    ),
    "What is 12 multiplied by 12?": "12 multiplied by 12 equals 144.",
    "Write one sentence about the Rockchip RK3576.": (
        "The Rockchip RK3576 is an octa-core SoC with four Cortex-A72 and four Cortex-A53 cores and a "
        "6 TOPS NPU for on-device AI."
    ),
    "把下面的现代文翻译成文言文: 到了春风和煦，阳光明媚的时候，湖面平静，没有惊涛骇浪，天色湖光相连，一片碧绿，广阔无际；"
    "沙洲上的鸥鸟，时而飞翔，时而停歇，美丽的鱼游来游去，岸上与小洲上的花草，青翠欲滴。": (
        "至若春和景明，波澜不惊，上下天光，一碧万顷；沙鸥翔集，锦鳞游泳；岸芷汀兰，郁郁青青。"
    ),
    "以咏梅为题目，帮我写一首古诗，要求包含梅花、白雪等元素。": (
        "《咏梅》\n白雪纷飞压翠枝，\n梅花独放傲寒时。\n暗香浮动黄昏后，\n一点春心雪里知。"
    ),
    "上联: 江边惯看千帆过": "下联: 山间常闻万壑鸣",
    "把这句话翻译成中文: Knowledge can be acquired from many sources. These include books, teachers and practical "
    "experience, and each has its own advantages. The knowledge we gain from books and formal education enables us "
    "to learn about things that we have no opportunity to experience in daily life. We can also develop our "
    "analytical skills and learn how to view and interpret the world around us in different ways. Furthermore, we "
    "can learn from the past by reading books. In this way, we won't repeat the mistakes of others and can build on "
    "their achievements.": (
        "知识可以从许多来源获得。这些来源包括书籍、教师和实践经验，每一种都有其自身的优势。我们从书籍和正规教育中获得的知识，"
        "使我们能够了解日常生活中没有机会经历的事物。我们还可以培养分析能力，学会以不同的方式看待和理解周围的世界。"
        "此外，我们可以通过阅读书籍向过去学习。这样，我们就不会重复别人的错误，并且可以在他们的成就之上继续前进。"
    ),
    "把这句话翻译成英文: RK3588是新一代高端处理器，具有高算力、低功耗、超强多媒体、丰富数据接口等特点": (
        "RK3588 is a new generation of high-end processor with high computing power, low power consumption, "
        "strong multimedia capabilities and rich data interfaces."
    ),
}

# picture file -> (answer to any English prompt, answer to the demo's Chinese menu prompt)
IMAGE_ANSWERS = {
    "red-circle.png": (
        "The image shows a large red circle centered on a plain white background. "
        "There are no other objects or text in the picture.",
        "这张图片中有一个红色的圆形，位于白色背景的中央，图中没有其他物体。",
    ),
    "house.png": (
        "The image shows a simple drawing of a house with a red triangular roof, a brown door and a small window. "
        "The house stands on green grass under a blue sky, with a yellow sun in the upper right corner.",
        "这张图片中有一座简单的房子，房子有红色的屋顶、棕色的门和一扇窗户，下面是绿色的草地，上面是蓝色的天空和黄色的太阳。",
    ),
    "cat.png": (
        "The image shows a cartoon drawing of a cat's face. The cat has an orange round head, two pointed ears, "
        "green eyes, a pink nose and black whiskers.",
        "这张图片中有一只卡通猫的脸，猫的头是橙色的，有两只尖耳朵、绿色的眼睛和黑色的胡须。",
    ),
    "chessboard.png": (
        "The image shows a black and white chessboard pattern with eight rows and eight columns of alternating squares.",
        "这张图片中是一个黑白相间的棋盘图案，共有八行八列的方格。",
    ),
    "text-rk3576.png": (
        'The image shows the text "RK3576" written in black letters on a white background. '
        "There are grey bars above and below the text.",
        "这张图片中有黑色的文字“RK3576”，背景是白色的。",
    ),
}

# Fallbacks; the stand-in (awk) produces the same texts.
UNKNOWN_PICTURE = (
    "The image shows an abstract picture with several shapes and colors. It is not clear what it represents."
)
NO_IMAGE_SEEN = "I'm sorry, but I can't see any image in your message. Could you describe it for me?"
EMPTY_PROMPT = "Hello! How can I help you today?"
_GENERIC = (
    'I\'m not sure I fully understand "{p}". Could you please provide more details?',
    'Thank you for your question about "{p}". I don\'t have enough information to give a precise answer, '
    "but I will do my best to help if you can tell me more.",
    'Here is a short answer to "{p}": it depends on the context. Could you clarify what you would like to know?',
)
_OPENINGS = ("The image shows", "The image depicts", "This image shows")
RUNTIME_SERIES = ("1.2", "1.1", "1.3")  # the first is the default entry ("*")


def normalize_prompt(prompt: str) -> str:
    """The text the answers are keyed on: the prompt without its ``<image>`` tag."""
    return prompt.replace("<image>", "")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_TOKEN = re.compile(r"\n|[ ]*[A-Za-z]+|[ ]*[0-9]|[ ]*[^ \nA-Za-z0-9]|[ ]+")


def tokenize(text: str) -> list[str]:
    """Twin tokenizer: a word with its leading spaces, a digit, or any other single character."""
    tokens = _TOKEN.findall(text)
    assert "".join(tokens) == text
    return tokens


def prompt_tokens(prompt: str) -> int:
    """Text tokens the stand-in counts for a prompt: UTF-8 bytes / 4, rounded up."""
    return (len(normalize_prompt(prompt).encode("utf-8")) + 3) // 4


def generic_answer(prompt: str) -> str:
    """The answer to a prompt the model has no entry for (deterministic in the prompt)."""
    p = normalize_prompt(prompt)
    if p == "":
        return EMPTY_PROMPT
    digest = sha256_text(p)
    shown = p if len(p.encode("utf-8")) <= 60 and '"' not in p else "your question"
    return _GENERIC[int(digest[0], 16) % 3].format(p=shown)


def _variant(text: str, spec: ModelSpec, series: str, key: str) -> str:
    """Small, deterministic differences between runtimes and quantizations."""
    v = int(hashlib.sha256(f"{spec.family}|{spec.dtype}|{series}|{key}".encode()).hexdigest(), 16) % 3
    if text.startswith(_OPENINGS[0]):
        text = _OPENINGS[v] + text[len(_OPENINGS[0]):]
    sentences = text.split(". ")
    if v == 1 and len(sentences) > 1 and text.isascii():
        text = ". ".join(sentences[:-1]) + "."
    return text


def _escape(token: str) -> str:
    return token.replace("\\", "\\\\").replace("\n", "\\n")


def _unescape(token: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), token)


def _entries(spec: ModelSpec, pictures_dir: Path) -> list[tuple[str, str, str, str, str]]:
    """(kind, key1, key2, series selector, text) for every answer of the model."""
    out = []

    def add(kind, key1, key2, base, salt):
        default = None
        for series in RUNTIME_SERIES:
            text = _variant(base, spec, series, salt)
            if default is None:
                default = text
                out.append((kind, key1, key2, "*", text))
            elif text != default:
                out.append((kind, key1, key2, series, text))

    for prompt, base in TEXT_ANSWERS.items():
        key = sha256_text(normalize_prompt(prompt))
        add("t", key, "-", base, key)
    for name, (en, zh) in IMAGE_ANSWERS.items():
        path = Path(pictures_dir) / name
        if not path.is_file():
            continue
        pic = hashlib.sha256(path.read_bytes()).hexdigest()
        add("i", pic, "*", en, pic + "en")
        add("i", pic, sha256_text(normalize_prompt(ZH_IMAGE_PROMPT)), zh, pic + "zh")
    return out


def _header(lines: list[str]) -> bytes:
    for line in lines:
        if "\n" in line or "\0" in line:
            raise ValueError(f"header line must be one line: {line!r}")
    data = ("\n".join(lines) + "\nend\n").encode("utf-8")
    if len(data) > HEADER_LIMIT:
        raise ValueError(f"header of {len(data)} bytes exceeds {HEADER_LIMIT}")
    return data + b"\0" * (-len(data) % ALIGN)


def filler(label: str, size: int) -> bytes:
    return hashlib.shake_256(f"rk3576-hil twin model filler {label}".encode()).digest(size) if size > 0 else b""


def rkllm_footer(toolkit_version: str) -> bytes:
    """The real file's last bytes; a NUL after the text before toolkit 1.3 (model-files.md §2.1)."""
    text = FOOTER.format(toolkit_version).encode("ascii")
    return text + (b"\0" if model_format(toolkit_version) < 3 else b"")


def rkllm_bytes(spec: ModelSpec, pictures_dir: Path = PICTURES_DIR) -> bytes:
    fam = spec.fam
    lines = [
        MAGIC_RKLLM.decode().strip(),
        f"format={model_format(spec.toolkit_version)}",
        f"toolkit_version={spec.toolkit_version}",
        f"target_platform={spec.target_platform}",
        f"max_context_limit={spec.max_context_limit}",
        f"npu_core_num={spec.npu_core_num}",
        f"model_dtype={spec.dtype}",
        f"family={spec.family}",
        f"model_name={spec.name}",
        f"base_model={fam.display}",
        f"arch={fam.arch}",
        f"hidden_size={fam.hidden_size}",
        f"num_layers={fam.num_layers}",
        f"vocab_size={fam.vocab_size}",
        "mrope=1",
        "note=synthetic model for the rk3576-hil virtual bench; it holds no weights",
    ]
    for kind, key1, key2, sel, text in _entries(spec, pictures_dir):
        if "\t" in text:
            raise ValueError("answers cannot contain tabs")
        tokens = _US.join(_escape(t) for t in tokenize(text))
        lines.append(f"@\t{kind}\t{key1}\t{key2}\t{sel}\t{tokens}")
    data = _header(lines)
    footer = rkllm_footer(spec.toolkit_version)
    return data + filler(spec.name + ".rkllm", fam.llm_kib * 1024 - len(data) - len(footer)) + footer


FP16 = {"qnt_method": "", "qnt_type": "", "vx_type": ""}  # a tensor's dtype in an FP16 build


def rknn_json(spec: ModelSpec) -> dict:
    """The trailing JSON of the encoder, in rknn-toolkit2's keys (an FP16 build: empty dtypes)."""
    return rknn_meta([("pixel", [1, 3, IMAGE_SIZE, IMAGE_SIZE])], [(spec.fam.output_name, [IMAGE_TOKENS,
                                                                                             spec.fam.hidden_size])],
                     platform=spec.target_platform, version=spec.rknn_toolkit_version, dtype=FP16)


def rknn_meta(inputs, outputs, *, platform: str, version: str, dtype: dict) -> dict:
    """A compiled model's trailing JSON, in rknn-toolkit2's keys: its inputs and outputs
    (``(name, shape)`` each, in graph order) as norm tensors of one NNBG node."""
    tensors = [*inputs, *outputs]
    norm = [{"dim_num": len(shape), "dtype": dtype, "size": list(shape), "tensor_id": i, "url": name}
            for i, (name, shape) in enumerate(tensors)]
    ends = ([("input", i, i) for i in range(len(inputs))]
            + [("output", i, len(inputs) + i) for i in range(len(outputs))])
    return {
        "connection": [{"left": side, "left_tensor_id": lid, "node_id": 0,
                        "right_tensor": {"tensor_id": rid, "type": "norm_tensor"}} for side, lid, rid in ends],
        "const_tensor": [],
        "graph": [{"left": side, "left_tensor_id": lid, "right": "norm_tensor", "right_tensor_id": rid}
                  for side, lid, rid in ends],
        "input_num": len(inputs), "name": "rknn model", "network_platform": "ONNX", "node_num": 1,
        "nodes": [{"input_num": len(inputs), "lid": "npu_network_bin_graph", "name": "nnbg",
                   "nn": {"nbg": {"type": "RKNN_OP_NNBG"}}, "op": "RKNN_OP_NNBG", "output_num": len(outputs),
                   "uid": 0}],
        "norm_tensor": norm, "norm_tensor_num": len(norm), "ori_network_platform": "ONNX",
        "output_num": len(outputs), "target_platform": [platform.lower()], "version": version,
        "virtual_tensor": [],
    }


def rknn_bytes(spec: ModelSpec) -> bytes:
    return rknn_container(rknn_json(spec), spec.fam.vision_kib * 1024, spec.name + ".rknn")


def rknn_container(meta: dict, size: int, label: str, private: bytes = b"") -> bytes:
    """The real container (model-files.md §1.1): 64-byte header, blob, u64 JSON size, JSON
    (``meta``, sorted and compact as rknn-toolkit2 writes it), ``size`` bytes in all. The blob
    is a FlatBuffer's start (identifier RKNN at bytes 4..7), then ``private`` (the stand-ins'
    section, if any) and deterministic filler: the twin's holds no graph."""
    trailer = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode("utf-8")
    head = struct.pack("<I", 16) + b"RKNN" + struct.pack("<Q", RKNN_CONTAINER_VERSION) + private
    blob = head + filler(label, size - 64 - 8 - len(trailer) - len(head))
    header = RKNN_MAGIC + struct.pack("<QQ", RKNN_CONTAINER_VERSION, len(blob)) + b"\0" * 40
    return header + blob + struct.pack("<Q", len(trailer)) + trailer


def corrupt(data: bytes) -> bytes:
    """A model whose start is gone (a truncated or zeroed download)."""
    return b"\0" * 16 + data[16:]


# --- reading (for expectations in tests; the suite reads models with hil.rockchip) ---------


class ModelFormatError(ValueError):
    """Not a twin model file, or a damaged one."""


def parse(data: bytes) -> dict:
    """The private section of a twin ``.rkllm``; answers under ``answers``."""
    if not data.startswith(MAGIC_RKLLM):
        raise ModelFormatError("bad magic: not a twin .rkllm")
    end = data.find(b"\nend\n", 0, HEADER_LIMIT)
    if end < 0:
        raise ModelFormatError("no end of header")
    fields: dict = {"kind": "rkllm", "answers": []}
    for line in data[:end].decode("utf-8").split("\n")[1:]:
        if line.startswith("@\t"):
            _, akind, key1, key2, sel, tokens = line.split("\t")
            fields["answers"].append(
                {"kind": akind, "key1": key1, "key2": key2, "sel": sel,
                 "tokens": [_unescape(t) for t in tokens.split(_US)]}
            )
        else:
            key, _, value = line.partition("=")
            fields[key] = value
    return fields


def _series(runtime: str) -> str:
    return ".".join(runtime.split(".")[:2])


def answer(
    llm: bytes | dict,
    prompt: str,
    picture_sha256: str | None = None,
    runtime: str = "1.2.1",
    multimodal: bool | None = None,
) -> str:
    """What the stand-in answers (before any max_new_tokens cut), for expectations in tests.

    ``multimodal`` defaults to whether the prompt has ``<image>`` (the demos' rule).
    """
    fields = parse(llm) if isinstance(llm, (bytes, bytearray)) else llm
    if multimodal is None:
        multimodal = "<image>" in prompt
    key = sha256_text(normalize_prompt(prompt))
    series = _series(runtime)

    def pick(kind, key1, keys2):
        for key2 in keys2:
            found = [a for a in fields["answers"] if (a["kind"], a["key1"], a["key2"]) == (kind, key1, key2)]
            for sel in (series, "*"):
                for a in found:
                    if a["sel"] == sel:
                        return "".join(a["tokens"])
        return None

    if multimodal:
        if picture_sha256 is None:
            return NO_IMAGE_SEEN
        return pick("i", picture_sha256, (key, "*")) or UNKNOWN_PICTURE
    return pick("t", key, ("-",)) or generic_answer(prompt)


# --- writing ------------------------------------------------------------------------------


def files_of(name: str) -> tuple[str, str]:
    """File names of a model: (LLM, vision encoder), the model zoo's for the twin's models."""
    spec = MODELS.get(name)
    return f"{name}.rkllm", f"{spec.vision_name if spec else name + '_vision'}.rknn"


def write_model(
    dest_dir: Path,
    spec: ModelSpec | str,
    pictures_dir: Path = PICTURES_DIR,
    corrupt_llm: bool = False,
    corrupt_vision: bool = False,
    name: str | None = None,
) -> tuple[Path, Path]:
    """Write the model's ``.rkllm`` and ``.rknn`` into ``dest_dir``, as a model zoo folder holds
    them; returns their paths (LLM, vision encoder)."""
    spec = MODELS[spec] if isinstance(spec, str) else spec
    name = name or spec.name
    directory = Path(dest_dir)
    directory.mkdir(parents=True, exist_ok=True)
    llm = rkllm_bytes(spec, pictures_dir)
    vision = rknn_bytes(spec)
    if corrupt_llm:
        llm = corrupt(llm)
    if corrupt_vision:
        vision = corrupt(vision)
    paths = tuple(directory / f for f in files_of(name))
    for path, data in zip(paths, (llm, vision)):
        path.write_bytes(data)
    return paths


def write_corrupt_model(dest_dir: Path, base: str = "qwen2-vl-2b-instruct_w4a16_rk3576",
                        name: str | None = None) -> tuple[Path, Path]:
    """A copy of ``base`` whose .rkllm has lost its start (for the invalid-model checks)."""
    return write_model(dest_dir, base, corrupt_llm=True, name=name or f"{base}-corrupt")


def write_models(dest_dir: Path, names: list[str] | None = None, pictures_dir: Path = PICTURES_DIR) -> list[Path]:
    """Write the given twin models (all of ``MODELS`` by default) into one folder; returns the LLM files."""
    return [write_model(dest_dir, n, pictures_dir)[0] for n in (names or list(MODELS))]
