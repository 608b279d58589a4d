"""Boot banners on real Rockchip consoles (public captures) and on the twin's."""

import pytest

from hil.rockchip.bootlog import boot_start

CAPTURES = [
    # RK3576 (OpenWrt RK3576 bring-up log): the DDR blob's banner, then SPL
    ("DDR 2f85f4b2d4 cym 24/11/07-19:07:28,fwver: v1.09\nIn\nch0 ttot10\n", "ddr"),
    # RK3588 (Orange Pi 5 Plus and rkbin V1.12 logs)
    ("DDR Version V1.08 20220617\nLPDDR4X, 2112MHz\n", "ddr"),
    ("DDR V1.12 52218f4949 cym 23/07/06-19:46:50\nLPDDR4X, 2112MHz\n", "ddr"),
    # garbage before the banner, as after a power cut mid-line
    ("#!/\x7f-\x7fDDR Version V1.10 20210810 In ddrconfig:7 LPDDR4X, 324MHz\n", "ddr"),
    ("out\nU-Boot SPL board init\nU-Boot SPL 2017.09-orangepi (May 19 2023 - 14:49:43)\n", "spl"),
    ("U-Boot SPL 2025.07-OpenWrt-r0+31053-5dc604a6a315 (Sep 13 2025 - 12:07:31 +0000)\n", "spl"),
    # RK3288 U-Boot proper
    ("\r\nU-Boot 2017.09 (Jan 10 2022 - 01:38:43 +0000)\r\n\r\nModel: Evb-RK3288\r\n", "uboot"),
    # RK3399 kernel, with timestamps
    ("[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd034]\n", "kernel"),
    # the twin: QEMU's U-Boot from Debian
    ("\nU-Boot 2023.01+dfsg-2+deb12u1 (Jan 01 2024 - 00:00:00 +0000)\n\nDRAM:  2 GiB\n", "uboot"),
]


@pytest.mark.parametrize("text, stage", CAPTURES)
def test_boot_banners_are_found(text, stage):
    found = boot_start(text)
    assert found is not None and found.stage == stage, found


def test_ordinary_console_output_is_not_a_boot():
    text = ("root@myd-lr3576:~# cat /sys/kernel/debug/rknpu/load\nNPU load:  Core0: 12%, Core1: 10%,\n"
            "[  312.1] RKNPU: rknpu_devfreq_target: 1000000000\nI rkllm: rkllm-runtime version: 1.2.1\n"
            "mmc0: new DDR MMC card at address 0001\nU-Boot environment saved\n")
    assert boot_start(text) is None


def test_line_noise_is_counted_and_clean_text_is_not():
    from hil.rockchip.text import clean_text, noise_chars

    garbled = clean_text((b"root@myd-lr3576:~# ls\r\n" + bytes([0xfe, 0x9c, 0x80, 0x13, 0xff, 0xc3]) * 3
                          + b"\r\nbin  etc  usr\r\n").decode("utf-8", errors="replace"))
    assert noise_chars(garbled) >= 8
    assert noise_chars(clean_text("[   12.3] rknpu 27700000.npu: RKNPU: Core0 load 40%\n你好\n")) == 0
