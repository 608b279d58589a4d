"""The pictures used for multimodal checks (``images/pictures``).

Each picture is drawn with pillow from code, so it can be regenerated and reviewed,
then stored already preprocessed the way the RKLLM demos preprocess their input:
padded to a square with mid grey and resized to the vision encoder's 392x392. On the
board the demo's own padding is then a no-op, and the file's SHA256 identifies the
picture (the twin's synthetic models key their answers on it).

The generated PNGs are committed: PNG bytes depend on the pillow and zlib versions, so
regenerating on another machine may change the SHA256 (and then the twin's models and
``pictures.yaml`` follow the new files, since both are derived from the files on disk).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from PIL import Image, ImageDraw, ImageFont

from hil.kit.filehash import sha256_file
from hil.paths import IMAGES_DIR

PICTURES_DIR = IMAGES_DIR / "pictures"
MANIFEST = "pictures.yaml"
SIZE = 392  # Qwen2-VL / Qwen2.5-VL demo input (392x392 -> 196 image tokens)
# The demos pad with (127.5, 127.5, 127.5); an 8-bit image can only hold 128.
PAD = (128, 128, 128)


def expand2square(img: Image.Image, fill: tuple[int, int, int] = PAD) -> Image.Image:
    """Pad to a square, image centred, as the demos' ``expand2square`` does."""
    width, height = img.size
    if width == height:
        return img.copy()
    size = max(width, height)
    out = Image.new("RGB", (size, size), fill)
    out.paste(img, ((size - width) // 2, (size - height) // 2))
    return out


def preprocess(img: Image.Image, size: int = SIZE) -> Image.Image:
    """What the demo feeds the encoder: RGB, padded square, bilinear resize."""
    return expand2square(img.convert("RGB")).resize((size, size), Image.BILINEAR)


def _red_circle() -> Image.Image:
    img = Image.new("RGB", (392, 392), "white")
    ImageDraw.Draw(img).ellipse((76, 76, 316, 316), fill=(220, 20, 30))
    return img


def _house() -> Image.Image:
    img = Image.new("RGB", (480, 360), (135, 200, 250))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 290, 480, 360), fill=(60, 170, 60))
    d.rectangle((140, 170, 340, 300), fill=(230, 210, 170), outline=(90, 60, 30), width=3)
    d.polygon([(120, 175), (240, 80), (360, 175)], fill=(200, 30, 30))
    d.rectangle((215, 225, 265, 300), fill=(120, 70, 30))
    d.rectangle((160, 195, 200, 235), fill=(250, 250, 200), outline=(90, 60, 30), width=2)
    d.ellipse((390, 20, 450, 80), fill=(255, 220, 0))
    return img


def _cat() -> Image.Image:
    img = Image.new("RGB", (392, 392), "white")
    d = ImageDraw.Draw(img)
    orange, dark = (240, 140, 40), (60, 40, 20)
    d.polygon([(96, 150), (120, 50), (185, 110)], fill=orange, outline=dark)
    d.polygon([(296, 150), (272, 50), (207, 110)], fill=orange, outline=dark)
    d.ellipse((86, 90, 306, 310), fill=orange, outline=dark, width=3)
    for x in (150, 242):
        d.ellipse((x - 20, 170, x + 20, 210), fill=(90, 200, 90))
        d.ellipse((x - 6, 176, x + 6, 204), fill="black")
    d.polygon([(186, 230), (206, 230), (196, 244)], fill=(240, 120, 150))
    for dy in (-8, 4, 16):
        d.line((110, 240 + dy, 170, 244), fill=dark, width=2)
        d.line((222, 244, 282, 240 + dy), fill=dark, width=2)
    return img


def _chessboard() -> Image.Image:
    img = Image.new("RGB", (392, 392), "white")
    d = ImageDraw.Draw(img)
    cell = 49
    for row in range(8):
        for col in range(8):
            if (row + col) % 2:
                d.rectangle((col * cell, row * cell, col * cell + cell - 1, row * cell + cell - 1), fill="black")
    return img


def _text_rk3576() -> Image.Image:
    img = Image.new("RGB", (640, 240), "white")
    d = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=120)
    except TypeError:  # pillow < 10.1 has no scalable default font
        font = ImageFont.load_default()
    box = d.textbbox((0, 0), "RK3576", font=font)
    x = (640 - (box[2] - box[0])) // 2 - box[0]
    y = (240 - (box[3] - box[1])) // 2 - box[1]
    d.text((x, y), "RK3576", fill="black", font=font)
    return img


# file -> (drawing, description, keywords for the English prompt, keywords for the Chinese prompt)
PICTURES = {
    "red-circle.png": (
        _red_circle,
        "A red circle centred on a white background.",
        ["red", "circle"],
        ["红色", "圆"],
    ),
    "house.png": (
        _house,
        "A simple drawing of a house with a red roof, a door and a window, on green grass under a blue sky.",
        ["house", "roof"],
        ["房子"],
    ),
    "cat.png": (
        _cat,
        "A cartoon cat face: an orange round head with pointed ears, green eyes and whiskers.",
        ["cat"],
        ["猫"],
    ),
    "chessboard.png": (
        _chessboard,
        "An 8x8 black and white chessboard pattern.",
        ["chessboard"],
        ["棋盘"],
    ),
    "text-rk3576.png": (
        _text_rk3576,
        "The text RK3576 in black letters on a white background.",
        ["RK3576"],
        ["RK3576"],
    ),
}


def generate(dest: Path = PICTURES_DIR) -> list[dict]:
    """Draw every picture, preprocess it, write the PNGs and ``pictures.yaml``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, (draw, description, keywords, keywords_zh) in PICTURES.items():
        source = draw()
        path = dest / name
        preprocess(source).save(path, format="PNG", optimize=False, compress_level=9)
        entries.append(
            {
                "file": name,
                "sha256": sha256_file(path),
                "source_size": list(source.size),
                "size": [SIZE, SIZE],
                "description": description,
                "keywords": keywords,
                "keywords_zh": keywords_zh,
            }
        )
    header = (
        "# Pictures for multimodal checks; generated by hil.kit.pictures.generate(), do not edit by hand.\n"
        "# Each is stored preprocessed (padded square with grey 128, 392x392). keywords must all appear\n"
        "# (case-insensitive) in the answer to '<image>What is in the image?', keywords_zh in the\n"
        "# answer to '<image>这张图片中有什么？'.\n"
    )
    text = yaml.safe_dump({"pictures": entries}, allow_unicode=True, sort_keys=False, width=120)
    (dest / MANIFEST).write_text(header + text, encoding="utf-8")
    return entries


def load(directory: Path = PICTURES_DIR) -> list[dict]:
    """The picture manifest entries, each with ``path`` added."""
    data = yaml.safe_load((Path(directory) / MANIFEST).read_text(encoding="utf-8"))
    out = []
    for entry in data["pictures"]:
        out.append({**entry, "path": Path(directory) / entry["file"]})
    return out


if __name__ == "__main__":
    for e in generate():
        print(e["file"], e["sha256"])
