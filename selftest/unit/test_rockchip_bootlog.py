"""hil.rockchip.bootlog: boot banners (``boot_start``, the console watchdog's) and whole boot captures
(``parse``, ``hil parse boot-log``) on real Rockchip consoles from public threads, quoted as pasted
(named at each; a search excerpt that ends inside a line is cut at the last whole line), and on the
twin's console as labgrid logged it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hil import cli
from hil.rockchip.bootlog import boot_start, parse

CAPTURES = [
    # RK3576 (OpenWrt RK3576 bring-up log): the DDR blob's banner, then SPL
    ("DDR 2f85f4b2d4 cym 24/11/07-19:07:28,fwver: v1.09\nIn\nch0 ttot10\n", "ddr"),
    # RK3576 with the first character lost (barban-dev/u-boot-radxa-rock-4d README)
    ("DR 2f85f4b2d4 cym 24/11/07-19:07:28,fwver: v1.09\nIn\nch0 ttot6\n", "ddr"),
    # RK3588 (Orange Pi 5 Plus and rkbin V1.12 logs)
    ("DDR Version V1.08 20220617\nLPDDR4X, 2112MHz\n", "ddr"),
    ("DDR V1.12 52218f4949 cym 23/07/06-19:46:50\nLPDDR4X, 2112MHz\n", "ddr"),
    # RK3328 (coolsnowwolf/lede#7975): lower-case "version"
    ("DDR version 1.17 20210528\nID:0x805 N\nIn\n", "ddr"),
    # RK3328 with mainline U-Boot: TPL does the DRAM init (openwrt/openwrt#2945)
    ("U-Boot TPL 2021.07 (Oct 21 2021 - 02:34:25)\nLPDDR3, 800MHz\n", "ddr"),
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
            "mmc0: new DDR MMC card at address 0001\nU-Boot environment saved\n"
            "INFO:    dfs DDR fsp_param[1].freq_mhz= 324MHz\n")
    assert boot_start(text) is None


def test_line_noise_is_counted_and_clean_text_is_not():
    from hil.rockchip.text import clean_text, noise_chars

    garbled = clean_text((b"root@myd-lr3576:~# ls\r\n" + bytes([0xfe, 0x9c, 0x80, 0x13, 0xff, 0xc3]) * 3
                          + b"\r\nbin  etc  usr\r\n").decode("utf-8", errors="replace"))
    assert noise_chars(garbled) >= 8
    assert noise_chars(clean_text("[   12.3] rknpu 27700000.npu: RKNPU: Core0 load 40%\n你好\n")) == 0


# --- real captures, quoted as pasted ---------------------------------------------------------------

# RK3576, Radxa ROCK 4D, mainline U-Boot from SPI flash booting Armbian from USB: the author's own
# "..." elisions kept, the DDR banner's first character lost, a quiet kernel (no line of its own).
# barban-dev/u-boot-radxa-rock-4d, README.md "Boot Log (UART Debug)".
ROCK_4D = """\
DR 2f85f4b2d4 cym 24/11/07-19:07:28,fwver: v1.09
In
ch0 ttot6
ch1 ttot6
... [DDR Initialization] ...
U-Boot SPL 2026.04-rc1-00063-geed514b11d04 (Jan 31 2026 - 22:29:40 +0100)
Trying to boot from SPI
## Checking hash(es) for config config-1 ... OK
...
U-Boot 2026.04-rc1-00063-geed514b11d04 (Jan 31 2026 - 22:29:40 +0100)
Model: Radxa ROCK 4D
SoC:   RK3576
DRAM:  4 GiB
...
USB XHCI 1.10
USB XHCI 1.10
Bus usb@23000000: 2 USB Device(s) found
Bus usb@23400000: 3 USB Device(s) found
Scanning bootdev 'usb_mass_storage.lun0.bootdev':
  0  script       ready   usb_mass_    1  usb_mass_storage.lun0.boo /boot/boot.scr
** Booting bootflow 'usb_mass_storage.lun0.bootdev.part_1' with script
Boot script loaded from usb 0:1
...
Starting kernel ...
Armbian 26.2.0-trunk.363 noble ttyFIQ0 
radxa-rock-4d login:
"""

# RK3588, Radxa ROCK 5B, mainline kernel and Debian 12: printk levels shown (<6>[...]), systemd's colour
# codes with their ESC bytes lost in the mail, a kernel line printed into the middle of a systemd line,
# and an automatic login. dri-devel, 2025-12-16, Aishwarya, "Re: [PATCH v5 6/8] drm/panthor: Support
# GLB_REQ.STATE field for Mali-G1 GPUs" (Message-ID 20251216000421.19137-1-aishwarya.tcv@arm.com).
ROCK_5B_PANTHOR = """\
<6>[   16.920109] panthor fb000000.gpu: [drm] clock rate = 198000000
<6>[   16.923794] panthor fb000000.gpu: EM: created perf domain
<6>[   16.926724] panthor fb000000.gpu: [drm] Mali-G610 id 0xa867 major 0x0 minor 0x0 status 0x5
<6>[   16.927481] panthor fb000000.gpu: [drm] Features: L2:0x7120306 Tiler:0x809 Mem:0x301 MMU:0x2830 AS:0xff
<6>[   16.929417] panthor fb000000.gpu: [drm] shader_present=0x50005 l2_present=0x1 tiler_present=0x1
<6>[   16.931633] videodev: Linux video capture interface: v2.00
<6>[   16.937816] hantro-vpu fdb50000.video-codec: registered rockchip,rk3568-vpu-dec as /dev/video0
         Starting [0;1;39msystemd-user-sess…vice[0m - Permit User Sessions...
<4>[   16.953212] panthor fb000000.gpu: [drm] Firmware protected mode entry not be supported, ignoring
<6>[   16.954047] panthor fb000000.gpu: [drm] Firmware git sha: 95a25d71030715381f33105394285e1dcc860a65 
<6>[   16.954985] panthor fb000000.gpu: [drm] CSF FW using interface v1.5.0, Features 0x0 Instrumentation features 0x71
[[0;32m  OK  [0m] Finished [0;1;39msystemd-user-sess…ervice[0m - Permit User Sessions.
<6>[   16.988220] hantro-vpu fdba0000.video-codec: registered rockchip,rk3588-vepu121-enc as /dev/video1
<6>[   17.012257] [drm] Initialized panthor 1.5.0 for fb000000.gpu on minor 0
<6>[   17.019183] rockchip-rga fdb80000.rga: HW Version: 0x03.02
<6>[   17.019850] rockchip-rga fdb80000.rga: Registered rockchip-rga as /dev/video2
<6>[   17.027260] hantro-vpu fdba4000.video-codec: missing multi-core support, ignoring this instance
<6>[   17.032242] hantro-vpu fdba8000.video-codec: missing multi-core support, ignoring this instance
[[0;32m  OK  [0m] Started [0;1;39mgetty@tty1.service[0m - Getty on tty1.
<6>[   17.040973] hantro-vpu fdbac000.video-codec: missing multi-core support, ignoring this instance
[[0;32m  OK  [0m] Started [0;1;39mserial-getty@ttyS2…rvice<6>[   17.042138] hantro-vpu fdc70000.video-codec: \
registered rockchip,rk3588-av1-vpu-dec as /dev/video3
[0m - Serial Getty on ttyS2.
[[0;32m  OK  [0m] Reached target [0;1;39mgetty.target[0m - Login Prompts.
[[0;32m  OK  [0m] Reached target [0;1;39mmulti-user.target[0m - Multi-User System.
<6>[   17.061041] snps_hdmirx fdee0000.hdmi_receiver: assigned reserved memory node hdmi-receiver-cma
[[0;32m  OK  [0m] Reached target [0;1;39mgraphical.target[0m - Graphical Interface.
         Starting [0;1;39msystemd-update-ut… Record Runlevel Change in UTMP...
<6>[   17.097767] input: rk805 pwrkey as /devices/platform/feb20000.spi/spi_master/spi2/spi2.0/rk805-pwrkey.3.auto\
/input/input0
<6>[   17.105210] xhci-hcd xhci-hcd.4.auto: xHCI Host Controller
<6>[   17.105721] xhci-hcd xhci-hcd.4.auto: new USB bus registered, assigned bus number 5
<6>[   17.106474] xhci-hcd xhci-hcd.4.auto: hcc params 0x0220fe64 hci version 0x110 quirks 0x0000808002000010
<6>[   17.107320] xhci-hcd xhci-hcd.4.auto: irq 106, io mem 0xfcd00000
<6>[   17.107908] xhci-hcd xhci-hcd.4.auto: xHCI Host Controller
<6>[   17.108451] xhci-hcd xhci-hcd.4.auto: new USB bus registered, assigned bus number 6
<6>[   17.109140] xhci-hcd xhci-hcd.4.auto: Host supports USB 3.0 SuperSpeed
<4>[   17.116126] rtc-hym8563 6-0051: no valid clock/calendar values available
[[0;32m  OK  [0m] Finished [0;1;39msystemd-update-ut… - Record Runlevel Change in UTMP.
<6>[   17.136757] hub 5-0:1.0: USB hub found
<6>[   17.137158] hub 5-0:1.0: 1 port detected
<6>[   17.138787] rtc-hym8563 6-0051: registered as rtc0
<4>[   17.140243] rtc-hym8563 6-0051: no valid clock/calendar values available
<3>[   17.141064] rtc-hym8563 6-0051: hctosys: unable to read the hardware clock
Debian GNU/Linux 12 debian-bookworm-arm64 ttyS2
debian-bookworm-arm64 login: root (automatic login)
"""

# RK3399, Radxa ROCK Pi 4C, mainline U-Boot: the console stops at U-Boot's last line ("After that
# nothing shows up"); the forum turned "..." into "…". forum.radxa.com/t/selfcompiled-linux-kernel-does-not-boot/13396
ROCK_PI_4C = """\
SoC: Rockchip rk3399
Reset cause: POR
Model: Radxa ROCK Pi 4C
DRAM: 3.9 GiB
PMIC: RK808
Core: 273 devices, 26 uclasses, devicetree: separate
MMC: mmc@fe310000: 2, mmc@fe320000: 1, mmc@fe330000: 0
Loading Environment from MMC… *** Warning - bad CRC, using default environment
In: serial
Out: serial
Err: serial
Model: Radxa ROCK Pi 4C
Net: eth0: ethernet@fe300000
Hit any key to stop autoboot: 0
switch to partitions #0, OK
mmc1 is current device
Scanning mmc 1:3…
Found /extlinux/extlinux.conf
Retrieving file: /extlinux/extlinux.conf
1: rockpi4-plus-openadk
Retrieving file: /kernel
append: console=ttyS2,115200n8 rw rootwait
Retrieving file: /rk3399-rock-pi-4c.dtb
Flattened Device Tree blob at 01f00000
Booting using the fdt blob at 0x1f00000
ERROR: reserving fdt memory region failed (addr=0 size=0 flags=0)
Loading Device Tree to 00000000f1ef8000, end 00000000f1f129b0 … OK
Starting kernel …
"""

# RK3588, Radxa ROCK 5A: a U-Boot prompt left on the line the DDR banner starts, and a boot that stops
# where SPL jumps to U-Boot. ryan4yin/nixos-rk3588#3 ("rock5a: failed to boot").
ROCK_5A_SPL = """\
=> DDR Version V1.08 20220617
LPDDR4X, 2112MHz
channel[0] BW=16 Col=10 Bk=8 CS0 Row=16 CS=1 Die BW=16 Size=1024MB
channel[1] BW=16 Col=10 Bk=8 CS0 Row=16 CS=1 Die BW=16 Size=1024MB
channel[2] BW=16 Col=10 Bk=8 CS0 Row=16 CS=1 Die BW=16 Size=1024MB
channel[3] BW=16 Col=10 Bk=8 CS0 Row=16 CS=1 Die BW=16 Size=1024MB
Manufacturer ID:0xff 
CH0 RX Vref:28.7%, TX Vref:22.8%,0.0%
CH1 RX Vref:30.7%, TX Vref:21.8%,0.0%
CH2 RX Vref:28.7%, TX Vref:21.8%,0.0%
CH3 RX Vref:28.7%, TX Vref:21.8%,0.0%
change to F1: 528MHz
change to F2: 1068MHz
change to F3: 1560MHz
change to F0: 2112MHz
out
U-Boot SPL board init
U-Boot SPL 2017.09 (Jun 20 2023 - 21:28:33)
unknown raw ID 25 38 c2
Trying to boot from MMC2
spl: partition error
Trying fit image at 0x4000 sector
## Verified-boot: 0
## Checking uboot 0x00200000 ... sha256(10d15abeec...) + OK
## Checking fdt 0x0031a038 ... sha256(a5d7ad4c63...) + OK
Total: 176.617 ms

Jumping to U-Boot(0x00200000)


"""

# RK3566, vendor BSP: TF-A and OP-TEE, then the SDK's U-Boot 2017.09 banner with its commit and SDK
# names; the "DDR" in TF-A's DRAM frequency lines is no banner. rockchip-linux/u-boot#94.
RK3566_TFA_UBOOT = """\
INFO:    dfs DDR fsp_param[1].freq_mhz= 324MHz
INFO:    dfs DDR fsp_param[2].freq_mhz= 528MHz
INFO:    dfs DDR fsp_param[3].freq_mhz= 780MHz
INFO:    Using opteed sec cpu_context!
INFO:    boot cpu mask: 0
INFO:    BL31: Initializing runtime services
INFO:    BL31: Initializing BL32
I/TC: 
I/TC: OP-TEE version: 3.13.0-791-g185dc3c92 #hisping.lin (gcc version 10.2.1 20201103 (GNU Toolchain for the \
A-profile Architecture 10.2-2020.11 (arm-10.16))) #2 Tue Apr 16 10:47:32 CST 2024 aarch64, fwver: v2.12 
I/TC: OP-TEE memory: TEEOS 0x200000 TA 0xc00000 SHM 0x200000
I/TC: Primary CPU initializing
I/TC: CRYPTO_CRYPTO_VERSION_NEW no support. Skip all algo mode check.
I/TC: Primary CPU switching to normal world boot
INFO:    BL31: Preparing for EL3 exit to normal world
INFO:    Entry point address = 0xa00000
INFO:    SPSR = 0x3c9


U-Boot 2017.09(u-boot commit id: 30d6e6f55d2b943c0910c3f69ccf4d302272ee71)(sdk version: \
rk356x_linux5.10_release_20241220_v1.4.0c.xml)-g30d6e6f55d-231220 #rk3566 (Jul 25 2025 - 04:23:32 -0700)

Model: Rockchip RK3568 Evaluation Board
MPIDR: 0x81000000
PreSerial: 2, raw, 0xfe660000
DRAM:  2 GiB
Sysmem: init
Relocation Offset: 7d217000
Relocation fdt: 7b9f88c8 - 7b9fece8
CR: M/C/I
Using default environment

optee api revision: 2.0
dwmmc@fe2b0000: 1, dwmmc@fe2c0000: 2, sdhci@fe310000: 0
"""

# RK3562, vendor kernel 6.1.115: U-Boot starts the kernel, which prints nothing until it panics in a
# power-domain driver; an unrelated kernel line lands inside the call trace. armbian/linux-rockchip#385
# (the search excerpt ends inside the next line).
RK3562_PANIC = """\
Starting kernel ...

[   10.722961] Kernel panic - not syncing: panic_on_set_idle set ...
[   10.723518] CPU: 0 PID: 48 Comm: kworker/u8:3 Not tainted 6.1.115-vendor-rk35xx #1
[   10.724190] Hardware name: PinusCore RK3562 (DT)
[   10.724610] Workqueue: events_unbound async_run_entry_fn
[   10.725098] Call trace:
[   10.725324]  dump_backtrace+0xe8/0x124
[   10.725669]  show_stack+0x20/0x30
[   10.725978]  dump_stack_lvl+0x6c/0x88
[   10.726311]  dump_stack+0x18/0x34
[   10.726619]  panic+0x138/0x310
[   10.726908]  rockchip_pmu_set_idle_request+0x114/0x1d8
[   10.727378]  rockchip_pd_power+0x424/0x480
[   10.727756]  rockchip_pd_power_on+0x24/0x38
[   10.728134]  _genpd_power_on+0xbc/0x150
[   10.728278] mmc_host mmc2: Bus speed (slot 0) = 400000Hz (slot req 400000Hz, actual 400000HZ div = 0)
[   10.729300]  genpd_power_on+0x5c/0x14c
[   10.729644]  __genpd_dev_pm_attach+0x1ac/0x280
[   10.730047]  genpd_dev_pm_attach+0x68/0x6c
"""

# RK3588, Radxa ROCK 5B, vendor kernel: the rknpu driver's probe on the console, between other drivers'
# lines (the debugfs line names the NPU's regulator directory, not a line of the driver).
# radxa/meta-rockchip#4 ("System Crashes on Rock5B"), a boot log of DasBasti's.
ROCK_5B_RKNPU = """\
[    3.029187] RKNPU fdab0000.npu: can't request region for resource [mem 0xfdac0000-0xfdacffff]
[    3.029197] RKNPU fdab0000.npu: can't request region for resource [mem 0xfdad0000-0xfdadffff]
[    3.029810] [drm] Initialized rknpu 0.8.2 20220829 for fdab0000.npu on minor 1
[    3.033513] RKNPU fdab0000.npu: leakage=12
[    3.033573] debugfs: Directory 'fdab0000.npu-rknpu' with parent 'vdd_npu_s0' already present!
[    3.040961] RKNPU fdab0000.npu: pvtm=873
[    3.045628] RKNPU fdab0000.npu: pvtm-volt-sel=3
[    3.046076] RKNPU fdab0000.npu: avs=0
[    3.046180] RKNPU fdab0000.npu: l=10000 h=85000 hyst=5000 l_limit=0 h_limit=800000000 h_table=0
[    3.049845] mmc0: new HS400 MMC card at address 0001
[    3.050388] mmcblk0: mmc0:0001 BJTD4R 29.1 GiB 
[    3.050509] mmcblk0boot0: mmc0:0001 BJTD4R partition 1 4.00 MiB
[    3.050622] mmcblk0boot1: mmc0:0001 BJTD4R partition 2 4.00 MiB
[    3.050708] mmcblk0rpmb: mmc0:0001 BJTD4R partition 3 4.00 MiB, chardev (237:0)
[    3.054026]  mmcblk0: p1 p2 p3
[    3.056600] RKNPU fdab0000.npu: failed to find power_model node
[    3.056611] RKNPU fdab0000.npu: RKNPU: failed to initialize power model
[    3.056616] RKNPU fdab0000.npu: RKNPU: failed to get dynamic-coefficient
[    3.057313] cfg80211: Loading compiled-in X.509 certificates for regulatory database
[    3.059557] cfg80211: Loaded X.509 cert 'sforshee: 00b28ddf47aef9cea7'
"""

# RK3576, Buildroot BSP kernel 6.1.75 with rknpu 0.9.7 built in; timestamps without padding.
# airockchip/rknn-toolkit2#534.
RK3576_RKNPU = """\
[6.356354] [drm] Initialized rknpu 0.9.7 20240424 for 27700000.npu on minor 1
[6.363258] RKNPU 27700000.npu: nbuf region: [0x000000003fe80000, 0x000000003ff80000)
"""

# RK3328, FriendlyElec NanoPi R2S (OpenWrt): a panic that reboots the board, TF-A's lines on the way
# down, the reporter's own remark, and the next boot's DDR blob and miniloader (the search excerpt
# ends inside the next line). coolsnowwolf/lede#7975.
R2S_PANIC_REBOOT = """\
[   42.816943]  do_idle+0x1c0/0x218
[   42.817226]  cpu_startup_entry+0x24/0x78
[   42.817572]  secondary_start_kernel+0x16c/0x180
[   42.817972] Code: 91006021 b8746820 8b140275 97ffffdd (f9400ab7) 
[   42.818511] ---[ end trace fab4d245248e0c83 ]---
[   42.818916] Kernel panic - not syncing: Attempted to kill the idle task!
[   42.819500] SMP: stopping secondary CPUs
[   42.819846] Kernel Offset: disabled
[   42.820153] CPU features: 0x0002,20002004
[   42.820503] Memory Limit: none
[   42.820775] Rebooting in 3 seconds..
INFO:    PSCI Power Domain Map:
INFO:      Domain Node : Level 2, parent_node -1, State ON (0x0)
INFO:      Domain Node : Level 1, parent_node 0, State ON (0x0)
INFO:      Domain Node : Level 0, parent_node 0, State ON (0x0)
INFO:      Domain Node : Level 0, parent_node 0, State ON (0x0)
INFO:      CPU Node : MPID 0x0, parent_node 1, State ON (0x0)
INFO:      CPU Node : MPID 0x1, parent_node 1, State ON (0x0)
INFO:      CPU Node : MPID 0x2, parent_node 1, State ON (0x0)
INFO:      CPU Node : MPID 0x3, parent_node 1, State ON (0x0)

这里是断电再上后出现的自动重启。

DDR version 1.17 20210528
ID:0x805 N
In
SRX
DDR4
333MHz
Bus Width=32 Col=10 Bank=4 Bank Group=2 Row=15 CS=1 Die Bus-Width=16 Size=1024MB
ddrconfig:14
OUT
Boot1 Release Time: May 13 2019 17:34:36, version: 2.50
ChipType = 0x11, 326
mmc2:cmd1,20
emmc reinit
mmc2:cmd1,20
emmc reinit
mmc2:cmd1,20
SdmmcInit=2 1
"""


# --- the twin ---------------------------------------------------------------------------------------

# Two boots of a twin board as labgrid logged its console in a farm self-test run (two sessions, each
# power-cycling the board; the second session's header lands after the first one's last prompt): CRLF,
# U-Boot's countdown redrawn with backspaces, getty's lone CRs, the shell's ESC[6n. Each boot's kernel
# lines between "Machine model: linux,dummy-virt" and "clk: Disabling unused clocks" are left out (210).
TWIN_TWO_BOOTS = b"".join([
    b'Labgrid Console Logfile for main\n',
    b'Logfile started at 2026-12-06 06:10:23.611601\n',
    b'=== Log starts here ===\n',
    b'\r\n',
    b'\r\n',
    b'U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)\r\n',
    b'\r\n',
    b'DRAM:  2 GiB\r\n',
    b'Core:  47 devices, 13 uclasses, devicetree: board\r\n',
    b'Flash: 64 MiB\r\n',
    b'Loading Environment from Flash... *** Warning - bad CRC, using default environment\r\n',
    b'\r\n',
    b'In:    pl011@9000000\r\n',
    b'Out:   pl011@9000000\r\n',
    b'Err:   pl011@9000000\r\n',
    b'Net:   eth0: virtio-net#30\r\n',
    b'Hit any key to stop autoboot:  1 \x08\x08\x08 0 \r\n',
    b'loading kernel to address 0000000040400000 size 1f6dfc0 initrd 0000000044000000 size 3f9f9',
    b'6\r\n',
    b'## Flattened Device Tree blob at bedb6db0\r\n',
    b'   Booting using the fdt blob at 0xbedb6db0\r\n',
    b'Working FDT set to bedb6db0\r\n',
    b'   Loading Ramdisk to bd9b8000, end bddb1f96 ... OK\r\n',
    b'   Loading Device Tree to 00000000bd8b5000, end 00000000bd9b7fff ... OK\r\n',
    b'Working FDT set to bd8b5000\r\n',
    b'\r\n',
    b'Starting kernel ...\r\n',
    b'\r\n',
    b'[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd083]\r\n',
    b'[    0.000000] Linux version 6.1.0-57-arm64 (debian-kernel@lists.debian.org) (gcc-12 (Debi',
    b'an 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP Debian 6.1.192',
    b'-3 (2026-11-26)\r\n',
    b'[    0.000000] random: crng init done\r\n',
    b'[    0.000000] Machine model: linux,dummy-virt\r\n',
    b'[    2.018591] clk: Disabling unused clocks\r\n',
    b'[    2.022177] uart-pl011 9000000.pl011: no DMA platform data\r\n',
    b'[    2.113264] Freeing unused kernel memory: 6464K\r\n',
    b'[    2.149072] Checked W+X mappings: passed, no W+X pages found\r\n',
    b'[    2.149485] Run /init as init process\r\n',
    b'\r\r\n',
    b'Debian GNU/Linux 12 myd-lr3576 /dev/ttyAMA0\r\n',
    b'\r\r\n',
    b'\rmyd-lr3576 login: \r\r\n',
    b'Debian GNU/Linux 12 myd-lr3576 /dev/ttyAMA0\r\n',
    b'\r\r\n',
    b'\rmyd-lr3576 login: root\r\n',
    b'Password: \r\n',
    b"login[138]: root login on 'ttyAMA0'\r\r\n",
    b'\r\n',
    b'\r\n',
    b'BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) built-in shell (ash)\r\n',
    b"Enter 'help' for a list of built-in commands.\r\n",
    b'\r\n',
    b'root@myd-lr3576:~# \x1b[6ndmesg -n 1\r\n',
    b"root@myd-lr3576:~# \x1b[6necho 'ZAXX''MLUZUU'\r\n",
    b'ZAXXMLUZUU\r\n',
    b'root@myd-lr3576:~# \x1b[6nrun() { echo -n "$MARKER"; sh -c "$@"; echo "$MARKER $?"; }\r\n',
    b'root@myd-lr3576:~# Labgrid Console Logfile for main\n',
    b'Logfile started at 2026-12-06 06:10:40.050602\n',
    b'=== Log starts here ===\n',
    b'\r\n',
    b'\r\n',
    b'U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)\r\n',
    b'\r\n',
    b'DRAM:  2 GiB\r\n',
    b'Core:  47 devices, 13 uclasses, devicetree: board\r\n',
    b'Flash: 64 MiB\r\n',
    b'Loading Environment from Flash... *** Warning - bad CRC, using default environment\r\n',
    b'\r\n',
    b'In:    pl011@9000000\r\n',
    b'Out:   pl011@9000000\r\n',
    b'Err:   pl011@9000000\r\n',
    b'Net:   eth0: virtio-net#30\r\n',
    b'Hit any key to stop autoboot:  1 \x08\x08\x08 0 \r\n',
    b'loading kernel to address 0000000040400000 size 1f6dfc0 initrd 0000000044000000 size 3f9f9',
    b'6\r\n',
    b'## Flattened Device Tree blob at bedb6db0\r\n',
    b'   Booting using the fdt blob at 0xbedb6db0\r\n',
    b'Working FDT set to bedb6db0\r\n',
    b'   Loading Ramdisk to bd9b8000, end bddb1f96 ... OK\r\n',
    b'   Loading Device Tree to 00000000bd8b5000, end 00000000bd9b7fff ... OK\r\n',
    b'Working FDT set to bd8b5000\r\n',
    b'\r\n',
    b'Starting kernel ...\r\n',
    b'\r\n',
    b'[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd083]\r\n',
    b'[    0.000000] Linux version 6.1.0-57-arm64 (debian-kernel@lists.debian.org) (gcc-12 (Debi',
    b'an 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP Debian 6.1.192',
    b'-3 (2026-11-26)\r\n',
    b'[    0.000000] random: crng init done\r\n',
    b'[    0.000000] Machine model: linux,dummy-virt\r\n',
    b'[    2.144614] clk: Disabling unused clocks\r\n',
    b'[    2.150916] uart-pl011 9000000.pl011: no DMA platform data\r\n',
    b'[    2.308190] Freeing unused kernel memory: 6464K\r\n',
    b'[    2.369907] Checked W+X mappings: passed, no W+X pages found\r\n',
    b'[    2.371063] Run /init as init process\r\n',
    b'\r\r\n',
    b'Debian GNU/Linux 12 myd-lr3576 /dev/ttyAMA0\r\n',
    b'\r\r\n',
    b'\rmyd-lr3576 login: \r\r\n',
    b'Debian GNU/Linux 12 myd-lr3576 /dev/ttyAMA0\r\n',
    b'\r\r\n',
    b'\rmyd-lr3576 login: root\r\n',
    b'Password: \r\n',
    b"login[137]: root login on 'ttyAMA0'\r\r\n",
    b'\r\n',
    b'\r\n',
    b'BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) built-in shell (ash)\r\n',
    b"Enter 'help' for a list of built-in commands.\r\n",
    b'\r\n',
    b'root@myd-lr3576:~# \x1b[6ndmesg -n 1\r\n',
    b"root@myd-lr3576:~# \x1b[6necho 'OHAY''UAXKLN'\r\n",
    b'OHAYUAXKLN\r\n',
    b'root@myd-lr3576:~# \x1b[6nrun() { echo -n "$MARKER"; sh -c "$@"; echo "$MARKER $?"; }\r\n',
    b'root@myd-lr3576:~# \x1b[6n',
])


# A twin board with the panic image (TWIN_BOOT_FAULT=kernel-panic: early in rcS, boot-fault logs an rknpu
# probe error and crashes the kernel through sysrq), as a suite self-test's console log showed it: the panic,
# the board starting over into U-Boot, a power-cycle during U-Boot's countdown, and the next boot into the
# kernel (lines 225 to 300 of that log: the end of the first boot's kernel and what followed).
TWIN_PANIC = b"".join([
    b'[    1.128647] evm: security.apparmor\r\n',
    b'[    1.128887] evm: security.ima\r\n',
    b'[    1.129029] evm: security.capability\r\n',
    b'[    1.129197] evm: HMAC attrs: 0x1\r\n',
    b'[    1.380846] clk: Disabling unused clocks\r\n',
    b'[    1.390297] uart-pl011 9000000.pl011: no DMA platform data\r\n',
    b'[    1.484085] Freeing unused kernel memory: 6464K\r\n',
    b'[    1.526430] Checked W+X mappings: passed, no W+X pages found\r\n',
    b'[    1.527528] Run /init as init process\r\n',
    b'[    2.417648] sysrq: Trigger a crash\r\n',
    b'[    2.417964] Kernel panic - not syncing: sysrq triggered crash\r\n',
    b'[    2.418263] CPU: 0 PID: 111 Comm: boot-fault Not tainted 6.1.0-57-arm64 #1  Debian 6.1.',
    b'192-3\r\n',
    b'[    2.418514] Hardware name: linux,dummy-virt (DT)\r\n',
    b'[    2.418738] Call trace:\r\n',
    b'[    2.419451]  dump_backtrace+0xe4/0x140\r\n',
    b'[    2.419814]  show_stack+0x20/0x30\r\n',
    b'[    2.419918]  dump_stack_lvl+0x64/0x80\r\n',
    b'[    2.420004]  dump_stack+0x18/0x34\r\n',
    b'[    2.420077]  panic+0x184/0x364\r\n',
    b'[    2.420145]  sysrq_reset_seq_param_set+0x0/0xa0\r\n',
    b'[    2.420239]  __handle_sysrq+0x90/0x19c\r\n',
    b'[    2.420317]  write_sysrq_trigger+0x7c/0xc8\r\n',
    b'[    2.420400]  proc_reg_write+0xac/0x100\r\n',
    b'[    2.420528]  vfs_write+0xdc/0x3a0\r\n',
    b'[    2.420609]  ksys_write+0x7c/0x11c\r\n',
    b'[    2.420703]  __arm64_sys_write+0x24/0x30\r\n',
    b'[    2.420824]  invoke_syscall+0x68/0xe0\r\n',
    b'[    2.420914]  el0_svc_common.constprop.0+0x4c/0xf4\r\n',
    b'[    2.421015]  do_el0_svc+0x2c/0x9c\r\n',
    b'[    2.421166]  el0_svc+0x34/0xdc\r\n',
    b'[    2.421240]  el0t_64_sync_handler+0xf4/0x120\r\n',
    b'[    2.421330]  el0t_64_sync+0x18c/0x190\r\n',
    b'[    2.421769] SMP: stopping secondary CPUs\r\n',
    b'[    2.422869] Kernel Offset: 0x5d22f6200000 from 0xffff800008000000\r\n',
    b'[    2.423047] PHYS_OFFSET: 0xfffff11d40000000\r\n',
    b'[    2.423170] CPU features: 0x020000,2013c080,0000421b\r\n',
    b'[    2.423507] Memory Limit: none\r\n',
    b'[    2.423901] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---\r\n',
    b'\r\n',
    b'\r\n',
    b'U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)\r\n',
    b'\r\n',
    b'DRAM:  2 GiB\r\n',
    b'Core:  47 devices, 13 uclasses, devicetree: board\r\n',
    b'Flash: 64 MiB\r\n',
    b'Loading Environment from Flash... *** Warning - bad CRC, using default environment\r\n',
    b'\r\n',
    b'In:    pl011@9000000\r\n',
    b'Out:   pl011@9000000\r\n',
    b'Err:   pl011@9000000\r\n',
    b'Net:   eth0: virtio-net#30\r\n',
    b'Hit any key to stop autoboot:  1 \r\n',
    b'\r\n',
    b'U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)\r\n',
    b'\r\n',
    b'DRAM:  2 GiB\r\n',
    b'Core:  47 devices, 13 uclasses, devicetree: board\r\n',
    b'Flash: 64 MiB\r\n',
    b'Loading Environment from Flash... *** Warning - bad CRC, using default environment\r\n',
    b'\r\n',
    b'In:    pl011@9000000\r\n',
    b'Out:   pl011@9000000\r\n',
    b'Err:   pl011@9000000\r\n',
    b'Net:   eth0: virtio-net#30\r\n',
    b'Hit any key to stop autoboot:  1 \x08\x08\x08 0 \r\n',
    b'loading kernel to address 0000000040400000 size 1f6dfc0 initrd 0000000044000000 size 3f9fa',
    b'3\r\n',
    b'## Flattened Device Tree blob at bedb6db0\r\n',
    b'   Booting using the fdt blob at 0xbedb6db0\r\n',
    b'Working FDT set to bedb6db0\r\n',
    b'   Loading Ramdisk to bd9b8000, end bddb1fa3 ... OK\r\n',
    b'   Loading Device Tree to 00000000bd8b5000, end 00000000bd9b7fff ... OK\r\n',
    b'Working FDT set to bd8b5000\r\n',
    b'\r\n',
    b'Starting kernel ...\r\n',
    b'\r\n',
    b'[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd083]\r\n',
])

# --- what parse makes of them -----------------------------------------------------------------------

def test_rk3576_boot_to_a_login_prompt():
    log = parse(ROCK_4D)
    assert len(log.boots) == 1
    boot = log.last
    assert boot.stages == ["ddr", "spl", "uboot", "login"]  # the kernel was quiet
    assert boot.last_stage == "login"
    assert (boot.panic, boot.rknpu, boot.kernel_version, boot.times_s) == (None, None, None, {})
    assert boot.first_line == 1 and boot.last_line == len(log.lines)
    assert log.last_lines(3) == ["Starting kernel ...", "Armbian 26.2.0-trunk.363 noble ttyFIQ0",
                                 "radxa-rock-4d login:"]


def test_rk3588_console_with_printk_levels_and_lost_colour_codes():
    log = parse(ROCK_5B_PANTHOR)
    boot = log.last
    assert len(log.boots) == 1 and boot.stages == ["kernel", "init", "login"]
    assert boot.times_s == {"kernel": 16.920109, "last": 17.141064}
    assert boot.panic is None and boot.rknpu is None
    # the colour codes are gone, ESC or not; the kernel line inside the systemd one stays where it was printed
    assert "[  OK  ] Reached target getty.target - Login Prompts." in boot.lines
    assert ("[  OK  ] Started serial-getty@ttyS2…rvice<6>[   17.042138] hantro-vpu fdc70000.video-codec: registered "
            "rockchip,rk3588-av1-vpu-dec as /dev/video3") in boot.lines
    assert log.last_lines(2) == ["Debian GNU/Linux 12 debian-bookworm-arm64 ttyS2",
                                 "debian-bookworm-arm64 login: root (automatic login)"]
    assert len(log.last_lines()) == 20 and log.last_lines()[-1] == log.last_lines(1)[0]


def test_the_same_console_over_a_serial_line_reads_the_same():
    """As the UART sends it: CR LF (a getty's CR CR LF) and the colour codes with their ESC bytes."""
    serial = re.sub(r"\[(?=[0-9;]+m)", "\x1b[", ROCK_5B_PANTHOR)
    assert serial.count("\x1b[") == 30
    for line_end in ("\r\n", "\r\r\n"):
        assert parse(serial.replace("\n", line_end).encode()).to_dict() == parse(ROCK_5B_PANTHOR).to_dict()


def test_a_boot_that_stops_in_uboot():
    log = parse(ROCK_PI_4C)
    assert [b.stages for b in log.boots] == [["uboot"]]  # no banner in the paste: the autoboot line tells
    assert log.last.last_stage == "uboot" and log.last.last_lines(1) == ["Starting kernel …"]


def test_a_boot_that_stops_where_spl_jumps_to_uboot():
    log = parse(ROCK_5A_SPL)
    assert [b.stages for b in log.boots] == [["ddr", "spl"]]  # the "=> " before the banner opens no boot of its own
    assert log.last.last_lines(1) == ["Jumping to U-Boot(0x00200000)"]


def test_tfa_and_optee_belong_to_the_loader_stage():
    log = parse(RK3566_TFA_UBOOT)
    assert [b.stages for b in log.boots] == [["spl", "uboot"]]
    assert log.last.first_line == 6  # "INFO:    BL31: Initializing runtime services"


def test_a_kernel_panic():
    log = parse(RK3562_PANIC)
    boot = log.last
    assert len(log.boots) == 1 and boot.stages == ["uboot", "kernel"]
    assert boot.panic == "[   10.722961] Kernel panic - not syncing: panic_on_set_idle set ..."
    assert boot.times_s == {"kernel": 10.722961, "panic": 10.722961, "last": 10.730047}
    assert boot.kernel_version is None  # no "Linux version" line: the kernel printed nothing before the panic
    assert boot.last_lines(1) == ["[   10.730047]  genpd_dev_pm_attach+0x68/0x6c"]
    # the same panic from a kernel built without CONFIG_PRINTK_TIME: the panic line alone shows the kernel
    untimed = parse(re.sub(r"^\[\s*\d+\.\d+\] ", "", RK3562_PANIC, flags=re.M)).last
    assert untimed.stages == ["uboot", "kernel"] and untimed.times_s == {}
    assert untimed.panic == "Kernel panic - not syncing: panic_on_set_idle set ..."


def test_rknpu_probe_lines_on_a_console():
    boot = parse(ROCK_5B_RKNPU).last
    assert boot.stages == ["kernel"]
    assert boot.rknpu == [line for line in ROCK_5B_RKNPU.splitlines() if "RKNPU fdab" in line or "[drm]" in line]
    assert len(boot.rknpu) == 11 and not any("debugfs" in line for line in boot.rknpu)
    assert boot.rknpu_driver == "0.8.2"
    # the same lines again from dmesg at a shell (a prompt built for the test) are the same probe
    again = parse(ROCK_5B_RKNPU + "root@rock-5b:~# dmesg | grep -i npu\n" + ROCK_5B_RKNPU).last
    assert again.rknpu == boot.rknpu and again.stages == ["kernel", "login"]
    boot = parse(RK3576_RKNPU).last
    assert boot.rknpu == RK3576_RKNPU.splitlines() and boot.rknpu_driver == "0.9.7"
    assert boot.times_s == {"kernel": 6.356354, "last": 6.363258}


def test_a_panic_that_reboots_the_board_is_two_boots():
    log = parse(R2S_PANIC_REBOOT)
    first, second = log.boots
    assert first.stages == ["kernel"] and second.stages == ["ddr", "spl"]  # miniloader: "Boot1 Release Time"
    assert first.panic == "[   42.818916] Kernel panic - not syncing: Attempted to kill the idle task!"
    assert first.last_line + 1 == second.first_line and log.lines[second.first_line - 1] == "DDR version 1.17 20210528"
    # the reporter's remark ("this is the automatic restart after the power was cut and restored")
    assert first.last_lines(1) == ["这里是断电再上后出现的自动重启。"]
    out = log.to_dict()
    assert out["boots"] == 2 and out["stages"] == ["ddr", "spl"] and out["panic"] is None  # the latest boot
    assert [b["panic"] for b in out["per_boot"]] == [first.panic, None]


def test_the_twins_console_two_boots():
    log = parse(TWIN_TWO_BOOTS)
    assert len(log.boots) == 2
    for boot, init in zip(log.boots, (2.149485, 2.371063)):
        assert boot.stages == ["uboot", "kernel", "init", "login"]
        assert boot.kernel_version == "6.1.0-57-arm64"
        assert boot.times_s == {"kernel": 0.0, "init": init, "last": init}
        assert boot.panic is None and boot.rknpu is None  # rcS turns the console's kernel messages off (dmesg -n 1)
    first, second = log.boots
    assert log.lines[first.first_line - 1].startswith("U-Boot 2023.01+dfsg-2+deb12u3")  # labgrid's header is in no boot
    assert log.lines[second.first_line - 1].startswith("U-Boot 2023.01+dfsg-2+deb12u3")
    assert "Hit any key to stop autoboot:  1  0" in first.lines  # the countdown's backspaces are gone
    # labgrid's header for the second session ends the first boot, after the prompt it was written on
    assert first.last_lines(3) == ["root@myd-lr3576:~# Labgrid Console Logfile for main",
                                   "Logfile started at 2026-12-06 06:10:40.050602", "=== Log starts here ==="]
    assert second.last_lines(2) == ['root@myd-lr3576:~# run() { echo -n "$MARKER"; sh -c "$@"; echo "$MARKER $?"; }',
                                    "root@myd-lr3576:~#"]
    assert "myd-lr3576 login:" in second.lines


def test_the_twins_panic_image_reboots_into_uboot():
    log = parse(TWIN_PANIC)
    assert [b.stages for b in log.boots] == [["kernel", "init"], ["uboot"], ["uboot", "kernel"]]
    panicked, interrupted, last = log.boots
    assert panicked.panic == "[    2.417964] Kernel panic - not syncing: sysrq triggered crash"
    assert panicked.times_s == {"kernel": 1.128647, "init": 1.527528, "panic": 2.417964, "last": 2.423901}
    assert panicked.last_lines(1) == ["[    2.423901] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---"]
    assert interrupted.last_lines(1) == ["Hit any key to stop autoboot:  1"]  # power-cycled in the countdown
    assert last.panic is None and last.times_s == {"kernel": 0.0, "last": 0.0}
    out = log.to_dict()
    assert (out["boots"], out["last_stage"], out["panic"]) == (3, "kernel", None)
    assert [b["last_stage"] for b in out["per_boot"]] == ["init", "uboot", "kernel"]


def test_console_output_on_a_logged_in_board_is_no_reboot():
    """Built from the twin's own lines: dmesg run at the shell replays "Booting Linux", and U-Boot's
    version command (which labgrid's UBootDriver runs) prints the banner again."""
    dmesg = ("U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)\r\n"
             "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd083]\r\n"
             "myd-lr3576 login: root\r\n"
             "root@myd-lr3576:~# dmesg | head -2\r\n"
             "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd083]\r\n"
             "[    0.000000] Linux version 6.1.0-57-arm64 (debian-kernel@lists.debian.org)\r\n")
    assert [b.stages for b in parse(dmesg).boots] == [["uboot", "kernel", "login"]]
    version = ("U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)\r\n\r\nDRAM:  2 GiB\r\n"
               "Hit any key to stop autoboot:  1 \b\b\b 0 \r\n=> version\r\n"
               "U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)\r\n\r\n=> ")
    assert [b.stages for b in parse(version).boots] == [["uboot"]]
    # without the command, a second banner is a second boot (the twin's power-cycle during the countdown)
    assert len(parse(version.replace("=> version\r\n", "")).boots) == 2


def test_nothing_of_a_boot():
    log = parse("hello\r\nroot is not a prompt\r\n\r\n")
    assert log.boots == [] and log.last is None
    assert log.to_dict() == {"boots": 0, "stages": [], "last_stage": None, "panic": None, "rknpu": None,
                             "rknpu_driver": None, "kernel_version": None, "times_s": {}, "per_boot": [],
                             "last_lines": ["hello", "root is not a prompt"]}


# --- hil parse boot-log -------------------------------------------------------------------------------

HIL = Path(sys.executable).parent / "hil"


def test_hil_parse_boot_log_through_main(tmp_path, capsys):
    path = tmp_path / "console.log"
    path.write_text(R2S_PANIC_REBOOT, encoding="utf-8")
    assert cli.main(["parse", "boot-log", str(path)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == parse(R2S_PANIC_REBOOT).to_dict() and err == ""
    assert out.startswith('{\n  "boots": 2,\n  "stages": [\n    "ddr",\n    "spl"\n  ],\n  "last_stage": "spl",\n')
    assert cli.main(["parse", "boot-log", str(tmp_path / "missing")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"error: cannot read {tmp_path / 'missing'}: No such file or directory\n"
    path.write_text("hello\n")
    assert cli.main(["parse", "boot-log", str(path)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["boots"] == 0 and err.startswith(f"warning: {path} holds no boot log")


def test_hil_parse_boot_log_as_a_command_reading_stdin():
    r = subprocess.run([str(HIL), "parse", "boot-log", "-"], input=TWIN_TWO_BOOTS, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["boots"] == 2 and out["last_stage"] == "login" and out["kernel_version"] == "6.1.0-57-arm64"
    assert [b["lines"] for b in out["per_boot"]] == [[b.first_line, b.last_line] for b in parse(TWIN_TWO_BOOTS).boots]
    assert out["last_lines"][-1] == "root@myd-lr3576:~#" and r.stderr == b""
