"""Copying a set of files to a board so that unchanged files are not sent again.

Models and runtimes are large and a qualification run deploys them on every board, so the
board keeps a manifest (``<remote_dir>/.hil-manifest.json``: relative path -> sha256) of what
was verified there. A file is skipped when the manifest has the local file's sha256 and the
file on the board has the local size; everything else is streamed, checked with
``sha256sum`` on the board and then entered in the manifest.

The logic is written against two callables so it runs without SSH (the unit tests drive
it with a local ``sh``): ``execute(cmd, *, stdin=None, timeout=None) -> str`` runs a shell
command line on the board and returns its stdout, raising on a non-zero status;
``upload(path, dst, cmd, on_chunk)`` streams a local file into the stdin of ``cmd`` (which
writes it to ``dst`` on the board) and calls ``on_chunk(bytes)`` for each chunk sent.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shlex
import stat
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath

import attr
from labgrid.driver.exception import ExecutionError

from hil.kit import filehash

MANIFEST = ".hil-manifest.json"
TMP_SUFFIX = ".hil-tmp"
MANIFEST_FORMAT = 1
SURVEY_MARKER = "--- hil manifest ---"
MAX_COMMAND = 32 * 1024  # one `sh -c` argument; Linux allows 128 KiB, keep well below
VERIFY_RATE = 10 * 1024 * 1024  # bytes/s sha256sum reads at least, even from a slow SD card
CHUNK = 256 * 1024

Execute = Callable[..., str]
Upload = Callable[[Path, str, str, Callable[[bytes], None]], None]


@attr.s(eq=False)
class DeployError(ExecutionError):
    """A deploy could not be done or not be verified; the message says which file and why."""

    def __str__(self) -> str:
        return self.msg


@attr.s(frozen=True)
class DeployResult:
    """What a deploy did: relative paths sent and skipped, and the manifest now on the board."""

    sent = attr.ib(factory=list)
    skipped = attr.ib(factory=list)
    bytes_sent = attr.ib(default=0)
    seconds = attr.ib(default=0.0)
    manifest = attr.ib(factory=dict, repr=False)


@attr.s(frozen=True)
class LocalFile:
    path = attr.ib(converter=Path)
    size = attr.ib()
    mode = attr.ib()  # permission bits, kept on the board

    @classmethod
    def of(cls, rel: str, path: Path) -> "LocalFile":
        try:
            st = Path(path).stat()
        except OSError as e:
            raise DeployError(f"cannot deploy {rel}: {e}") from None
        if not stat.S_ISREG(st.st_mode):
            raise DeployError(f"cannot deploy {rel}: {path} is not a regular file")
        return cls(path, st.st_size, stat.S_IMODE(st.st_mode) & 0o777)


# --- paths ---------------------------------------------------------------------------------
_UNSAFE = re.compile(r"[\x00-\x1f\\]")


def check_remote_dir(remote_dir: str) -> str:
    """The remote directory without trailing slashes; refuses names sha256sum would escape."""
    if not remote_dir or _UNSAFE.search(remote_dir):
        raise DeployError(f"unusable remote directory {remote_dir!r}")
    return remote_dir.rstrip("/") or "/"


def check_rel_path(rel: str) -> str:
    """A normalised relative path below the remote directory; refuses escapes and odd names."""
    path = PurePosixPath(rel)
    if (not rel or path.is_absolute() or ".." in path.parts or not path.parts
            or _UNSAFE.search(rel) or path.as_posix() == MANIFEST or rel.endswith(TMP_SUFFIX)):
        raise DeployError(f"unusable relative path {rel!r}: it must stay below the remote directory, "
                          f"without '..', control characters or backslashes")
    return path.as_posix()


def remote_path(remote_dir: str, rel: str) -> str:
    return posixpath.join(remote_dir, rel)


def manifest_path(remote_dir: str) -> str:
    return remote_path(remote_dir, MANIFEST)


# --- local hashing -------------------------------------------------------------------------
_hash_cache: dict[tuple, str] = {}


def sha256_file(path: Path) -> str:
    """sha256 of a local file, remembered per (inode, size, mtime) so a second deploy of
    multi-gigabyte models in the same session (or the provenance's hash of them) does not
    read them again."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        _hash_cache[key] = filehash.sha256_file(path)
    return _hash_cache[key]


# --- manifest ------------------------------------------------------------------------------
def parse_manifest(text: str) -> dict[str, str]:
    """The manifest's entries; an unreadable or foreign manifest counts as empty (all is resent)."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    files = data.get("files") if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None
    if not isinstance(files, dict):
        return {}
    return {k: v for k, v in files.items()
            if isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v)}


def render_manifest(manifest: Mapping[str, str]) -> bytes:
    return (json.dumps({"format": MANIFEST_FORMAT, "files": dict(sorted(manifest.items()))}, indent=1)
            + "\n").encode()


def plan(local: Mapping[str, LocalFile], manifest: Mapping[str, str], remote_sizes: Mapping[str, int],
         hasher: Callable[[Path], str] = sha256_file) -> tuple[list[str], list[str]]:
    """Split the files into (send, skip). Only files the manifest lists with the local size on
    the board are hashed here; the others are sent anyway and hashed while they stream."""
    send, skip = [], []
    for rel, f in local.items():
        known = manifest.get(rel)
        if known is not None and remote_sizes.get(rel) == f.size and hasher(f.path) == known:
            skip.append(rel)
        else:
            send.append(rel)
    return send, skip


def without(manifest: Mapping[str, str], rels: Iterable[str]) -> dict[str, str]:
    drop = set(rels)
    return {k: v for k, v in manifest.items() if k not in drop}


# --- what the board says -------------------------------------------------------------------
_DF_LINE = re.compile(r"^(?P<fs>\S.*?)\s+(?P<total>\d+)\s+(?P<used>\d+)\s+(?P<avail>\d+)\s+\d+%\s+(?P<mount>.+)$")


def parse_df(text: str) -> tuple[int, str]:
    """(available bytes, mount point) from ``df -kP`` output."""
    for line in reversed(text.strip().splitlines()):
        m = _DF_LINE.match(line.strip())
        if m:
            return int(m["avail"]) * 1024, m["mount"]
    raise DeployError(f"cannot read the free space from df: {text.strip()!r}")


def parse_survey(text: str) -> tuple[int, str, dict[str, str]]:
    """(available bytes, mount point, manifest) from the output of :func:`survey_command`."""
    df, sep, manifest = text.partition(SURVEY_MARKER + "\n")
    if not sep:
        raise DeployError(f"unexpected answer from the board: {text[-500:]!r}")
    avail, mount = parse_df(df)
    return avail, mount, parse_manifest(manifest)


def parse_stat_sizes(text: str, remote_dir: str) -> dict[str, int]:
    """Sizes by relative path from ``stat -c '%s %n'`` lines (missing files print nothing)."""
    prefix = remote_dir.rstrip("/") + "/"
    sizes = {}
    for line in text.splitlines():
        size, _, name = line.partition(" ")
        if size.isdigit() and name.startswith(prefix):
            sizes[name[len(prefix):]] = int(size)
    return sizes


def parse_sha256sum(text: str, remote_dir: str) -> dict[str, str]:
    prefix = remote_dir.rstrip("/") + "/"
    hashes = {}
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if re.fullmatch(r"[0-9a-f]{64}", digest) and name.startswith(prefix):
            hashes[name[len(prefix):]] = digest
    return hashes


def check_space(need: int, avail: int, mount: str, count: int) -> None:
    if need > avail:
        raise DeployError(f"not enough space on the board: {count} file(s) need {need} bytes "
                          f"({_human(need)}) but {mount} has {avail} bytes ({_human(avail)}) free")


def mismatches(sent: Mapping[str, str], board: Mapping[str, str]) -> dict[str, tuple[str, str | None]]:
    """rel -> (sent sha256, board sha256 or None) for every sent file the board does not confirm."""
    return {rel: (digest, board.get(rel)) for rel, digest in sent.items() if board.get(rel) != digest}


def verification_error(remote_dir: str, bad: Mapping[str, tuple[str, str | None]]) -> DeployError:
    lines = [f"  {remote_path(remote_dir, rel)}: sent sha256 {want}, board has {got or 'no file'}"
             for rel, (want, got) in bad.items()]
    return DeployError(f"{len(bad)} file(s) differ on the board after sending (left out of the "
                       f"manifest, so the next deploy sends them again):\n" + "\n".join(lines))


# --- command lines -------------------------------------------------------------------------
q = shlex.quote


def survey_command(remote_dir: str) -> str:
    d, m = q(remote_dir), q(manifest_path(remote_dir))
    return f"mkdir -p -- {d} && df -kP -- {d} && echo {q(SURVEY_MARKER)} && {{ cat -- {m} 2>/dev/null || true; }}"


def batched(prefix: str, args: list[str], suffix: str = "") -> list[str]:
    """Command lines ``prefix ARG... suffix``, each short enough for one ``sh -c`` argument."""
    commands, current = [], []
    for arg in args:
        if current and len(prefix) + len(suffix) + sum(len(a) + 1 for a in current) + len(arg) > MAX_COMMAND:
            commands.append(" ".join([prefix, *current]) + suffix)
            current = []
        current.append(arg)
    if current:
        commands.append(" ".join([prefix, *current]) + suffix)
    return commands


def stat_commands(remote_dir: str, rels: Iterable[str]) -> list[str]:
    return batched("stat -c '%s %n' --", [q(remote_path(remote_dir, r)) for r in rels], " 2>/dev/null; true")


def sha256sum_commands(remote_dir: str, rels: Iterable[str]) -> list[str]:
    return batched("sha256sum --", [q(remote_path(remote_dir, r)) for r in rels])


def replace_command(dst: str, mode: int) -> str:
    """Write stdin to ``dst`` through a temporary name, so a broken transfer never leaves a
    half-written file under the real name."""
    tmp = q(dst + TMP_SUFFIX)
    return (f"{{ mkdir -p -- {q(posixpath.dirname(dst) or '.')} && cat > {tmp} && chmod {mode:o} -- {tmp} "
            f"&& mv -f -- {tmp} {q(dst)}; }} || {{ rc=$?; rm -f -- {tmp}; exit $rc; }}")


def write_manifest_command(remote_dir: str) -> str:
    return replace_command(manifest_path(remote_dir), 0o644)


# --- the deploy ----------------------------------------------------------------------------
def deploy(files: Mapping[str, Path], remote_dir: str, *, execute: Execute, upload: Upload,
           progress: bool = True, logger=None) -> DeployResult:
    started = time.monotonic()
    remote_dir = check_remote_dir(remote_dir)
    local: dict[str, LocalFile] = {}
    for rel, path in files.items():
        norm = check_rel_path(rel)
        if norm in local:
            raise DeployError(f"{rel!r} names the same remote file as another entry")
        local[norm] = LocalFile.of(rel, path)

    avail, mount, manifest = parse_survey(execute(survey_command(remote_dir)))
    sizes: dict[str, int] = {}
    for cmd in stat_commands(remote_dir, local):
        sizes.update(parse_stat_sizes(execute(cmd), remote_dir))
    send, skip = plan(local, manifest, sizes)
    need = sum(local[rel].size for rel in send)
    check_space(need, avail, mount, len(send))

    final = dict(manifest)
    if send:
        if any(rel in manifest for rel in send):
            # Forget the old hashes first: if the transfer breaks, the board must not claim them.
            final = without(manifest, send)
            execute(write_manifest_command(remote_dir), stdin=render_manifest(final))
        sent = _stream(local, send, remote_dir, upload, need, progress)
        board: dict[str, str] = {}
        for cmd in sha256sum_commands(remote_dir, send):
            board.update(parse_sha256sum(execute(cmd, timeout=60 + need / VERIFY_RATE), remote_dir))
        bad = mismatches(sent, board)
        final.update({rel: digest for rel, digest in sent.items() if rel not in bad})
        execute(write_manifest_command(remote_dir), stdin=render_manifest(final))
        if bad:
            raise verification_error(remote_dir, bad)
    result = DeployResult(sent=send, skipped=skip, bytes_sent=need, seconds=time.monotonic() - started,
                          manifest=final)
    if logger is not None:
        logger.info("deployed to %s: %d sent (%s), %d unchanged, %.1f s", remote_dir, len(send), _human(need),
                    len(skip), result.seconds)
    return result


def _stream(local: Mapping[str, LocalFile], send: list[str], remote_dir: str, upload: Upload, total: int,
            progress: bool) -> dict[str, str]:
    """Send the files with one progress bar over all their bytes; their sha256 as sent."""
    from tqdm import tqdm

    hashes = {}
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"deploy {remote_dir}",
              disable=not (progress and sys.stderr.isatty())) as bar:
        for rel in send:
            f = local[rel]
            h = hashlib.sha256()

            def on_chunk(chunk: bytes, h=h) -> None:
                h.update(chunk)
                bar.update(len(chunk))

            bar.set_postfix_str(rel, refresh=False)
            dst = remote_path(remote_dir, rel)
            upload(f.path, dst, replace_command(dst, f.mode), on_chunk)
            hashes[rel] = h.hexdigest()
    return hashes


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
