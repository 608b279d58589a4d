"""Boot benchmark of the virtual bench.

Prints, as medians over --runs power cycles:
  - power-on to `login:` for one board alone (the reference),
  - the same for two boards powered on at once, and its ratio to the reference,
  - `login:` to a usable shell through labgrid's ShellDriver, and its ratio to a bare
    login over the raw console socket measured in the same run.

Run: .venv/bin/python bench/boot_time.py [--runs 5]
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labgrid import Environment  # noqa: E402

from hil.twin import bench as benchmod  # noqa: E402
from hil.twin.bench import free_base_port  # noqa: E402
from hil.twin.handle import BenchHandle  # noqa: E402

TIMEOUT = 60.0


def _read_until(sock: socket.socket, pattern: bytes, deadline: float) -> bytes:
    buf = b""
    while not re.search(pattern, buf):
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except TimeoutError:
            data = b""
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pattern!r} not seen; last output {buf[-200:]!r}")
        buf += data
    return buf


def power_on_to_login(bench: BenchHandle, boards: list[int]) -> list[float]:
    """Switch the outlets on together; seconds from the switch to each board's login prompt."""
    socks = {n: socket.create_connection(("127.0.0.1", bench.ports(n)["console"])) for n in boards}
    for n in boards:
        bench.call("GET", f"/outlet/{n}/0")
    results: dict[int, float] = {}
    start = time.monotonic()

    def wait(n):
        _read_until(socks[n], rb"login: ", start + TIMEOUT)
        results[n] = time.monotonic() - start

    threads = [threading.Thread(target=wait, args=(n,)) for n in boards]
    for t in threads:
        t.start()
    for n in boards:
        bench.call("GET", f"/outlet/{n}/1")
    for t in threads:
        t.join()
    for s in socks.values():
        s.close()
    return [results[n] for n in boards]


def raw_login(bench: BenchHandle) -> float:
    with socket.create_connection(("127.0.0.1", bench.ports(1)["console"])) as sock:
        bench.call("GET", "/outlet/1/0")
        bench.call("GET", "/outlet/1/1")
        deadline = time.monotonic() + TIMEOUT
        _read_until(sock, rb"login: ", deadline)
        start = time.monotonic()
        sock.sendall(b"root\n")
        _read_until(sock, rb"Password: ", deadline)
        sock.sendall(b"rk3576\n")
        _read_until(sock, rb"root@myd-lr3576:\S+# ", deadline)
        sock.sendall(b"echo ok-$((1+1))\n")
        _read_until(sock, rb"ok-2", deadline)
        return time.monotonic() - start


def labgrid_login(bench: BenchHandle, env_file: Path) -> float:
    env = Environment(str(env_file))
    target = env.get_target("main")
    try:
        with socket.create_connection(("127.0.0.1", bench.ports(1)["console"])) as sock:
            target.get_driver("PowerProtocol").off()
            target.get_driver("PowerProtocol").on()
            _read_until(sock, rb"login: ", time.monotonic() + TIMEOUT)
        start = time.monotonic()
        shell = target.get_driver("ShellDriver")
        shell.run_check("echo ok")
        return time.monotonic() - start
    finally:
        target.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    runs = p.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        config = benchmod.BenchConfig(boards=2, base_port=free_base_port(27000), state_dir=Path(tmp) / "bench")
        bench = BenchHandle(config, benchmod.up(config))
        try:
            power_on_to_login(bench, [1])  # warm-up: page cache, first QEMU start
            one = [power_on_to_login(bench, [1])[0] for _ in range(runs)]
            two = [t for _ in range(runs) for t in power_on_to_login(bench, [1, 2])]
            bench.call("GET", "/outlet/2/0")
            raw = [raw_login(bench) for _ in range(runs)]
            env_file = bench.env_file(Path(tmp))
            bench.acquire(1)
            lg = [labgrid_login(bench, env_file) for _ in range(runs)]
        finally:
            bench.stop()
    m1, m2, mr, ml = (statistics.median(x) for x in (one, two, raw, lg))
    print(f"power-on to login, one board:        median {m1:.2f} s  (min {min(one):.2f}, max {max(one):.2f}, n={runs})")
    print(f"power-on to login, two boards at once: median {m2:.2f} s  (min {min(two):.2f}, max {max(two):.2f}, "
          f"n={len(two)})  ratio to one board {m2 / m1:.2f}")
    print(f"login prompt to shell, raw socket:   median {mr:.2f} s  (reference)")
    print(f"login prompt to shell, labgrid:      median {ml:.2f} s  ratio to raw {ml / mr:.2f}")


if __name__ == "__main__":
    main()
