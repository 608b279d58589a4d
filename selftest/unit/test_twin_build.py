"""Pure pieces of the twin builder: cpio, firmware container, manifests, host key, patches."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from hil.kit import images
from hil.twin import build, firmware, hostkey
from hil.twin.cpio import CpioWriter


def _parse_newc(data: bytes) -> dict[str, tuple[int, bytes]]:
    out, pos = {}, 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = data[pos + 110: pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        body = data[pos: pos + size]
        pos = (pos + size + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, body)


def test_cpio_is_deterministic_and_complete():
    def make():
        c = CpioWriter()
        c.add_file("etc/twin/image.env", b"A=1\n", 0o644)
        c.add_symlink("bin/sh", "busybox")
        c.add_chardev("dev/console", 5, 1)
        return c

    assert make().to_gzip() == make().to_gzip()
    entries = _parse_newc(gzip.decompress(make().to_gzip()))
    assert entries["etc/twin/image.env"] == (0o100644, b"A=1\n")
    assert entries["bin/sh"] == (0o120777, b"busybox")
    assert "etc" in entries and "etc/twin" in entries  # parents are created


def test_firmware_roundtrip_and_corruption(tmp_path):
    path = tmp_path / "x.img"
    firmware.write(path, {"name": "x"}, b"K" * 1000, b"I" * 500, "console=ttyAMA0")
    image = firmware.read(path)
    assert image["manifest"] == {"name": "x"} and image["cmdline"] == "console=ttyAMA0"
    data = bytearray(path.read_bytes())
    data[data.index(b"K" * 10) + 5] ^= 0xFF
    (tmp_path / "bad.img").write_bytes(bytes(data))
    with pytest.raises(firmware.FirmwareError, match="boot/Image does not match its SHA256"):
        firmware.read(tmp_path / "bad.img")
    (tmp_path / "short.img").write_bytes(path.read_bytes()[:3000])
    with pytest.raises(firmware.FirmwareError, match="truncated|corrupt|incomplete"):
        firmware.read(tmp_path / "short.img")
    other = io.BytesIO()
    with tarfile.open(fileobj=other, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("README"), io.BytesIO(b""))
    (tmp_path / "other.img").write_bytes(other.getvalue())
    with pytest.raises(firmware.FirmwareError, match="not a twin firmware image"):
        firmware.read(tmp_path / "other.img")


def test_every_committed_manifest_loads():
    names = images.available()
    assert {"twin-good", "twin-rkllm-1.3.0", "twin-old-driver", "twin-slow-npu", "twin-panic", "twin-no-login"} <= set(names)
    good = images.load("twin-good")
    assert (good.rknpu_driver, good.rkllm_runtime) == ("0.9.8", "1.2.1")
    assert images.load("twin-old-driver").rknpu_driver == "0.9.6"
    assert images.load("twin-slow-npu").npu_freq_cap_hz == 700_000_000
    assert images.load("twin-panic").boot_fault == "kernel-panic"


def test_unknown_or_broken_manifest_names_the_cause(tmp_path):
    with pytest.raises(images.ManifestError, match="unknown image 'nope'.*known images: twin-good"):
        images.load("nope")
    (tmp_path / "bad.yaml").write_text("name: bad\nrknpu_driver: 0.9\nrkllm_runtime: 1.2.1\nrknn_runtime: 2.3.2\nbuild: {id: x}\n")
    with pytest.raises(images.ManifestError, match="rknpu_driver must be a version"):
        images.load("bad", tmp_path)
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(images.ManifestError, match="not valid YAML"):
        images.load("broken", tmp_path)


def test_host_key_is_stable_and_in_dropbear_format():
    a, b = hostkey.derive(), hostkey.derive()
    assert a.public_line() == b.public_line() and a.public_line().startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5")
    blob = a.dropbear_private()
    assert blob[:4] == b"\x00\x00\x00\x0bssh-ed25519"[:4] and blob[4:15] == b"ssh-ed25519"
    assert blob[15:19] == b"\x00\x00\x00\x40" and blob[-32:] == a.public


def test_uboot_patch_and_applet_table():
    env = b"xx\0bootdelay=2\0baudrate=115200\0"
    assert build._patch_uboot(env) == b"xx\0bootdelay=1\0baudrate=115200\0"
    with pytest.raises(build.BuildError):
        build._patch_uboot(b"nothing here")
    table = b"junk[\0[[\0ash\0realpath\0reboot\0renice\0\0more"
    assert build._busybox_applets(table) == ["[", "[[", "ash", "realpath", "reboot", "renice"]
    hidden = build._hide_applet(table, "reboot")
    names = build._busybox_applets(hidden)
    assert "reboot" not in names and "rebooT" in names and names == sorted(names, key=lambda n: n.encode())


def test_build_record_says_up_to_date_without_work(twin_images):
    record = build.build()
    assert record["up_to_date"] is True
    assert set(record["images"]) >= {"twin-good", "twin-panic"}
    manifest = firmware.read(twin_images / "twin-old-driver.img")["manifest"]
    assert manifest["rknpu_driver"] == "0.9.6" and manifest["kernel"]["release"].startswith("6.1.")
    assert json.loads((twin_images.parent / "build.json").read_text())["digest"] == record["digest"]


def test_build_is_reproducible(twin_images, tmp_path):
    """A second build from scratch into another directory gives byte-equal images."""
    record = build.build(force=True, out=tmp_path / "twin")
    for name, digest in record["images"].items():
        assert digest == hashlib.sha256((twin_images / f"{name}.img").read_bytes()).hexdigest(), name
