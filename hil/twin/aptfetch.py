"""Fetch arm64 Debian packages with a private apt state.

The host's apt configuration, architecture list and package cache are never touched:
lists, cache and status live under the twin's cache directory. The sources are the
host's own (``Dir::Etc::SourceParts`` is left alone on purpose: overriding it breaks
the host's sources file).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import attr


class AptError(RuntimeError):
    """apt could not resolve or download a guest package."""


@attr.s(eq=False)
class PrivateApt:
    """apt-get/apt-cache bound to a private state directory for one architecture."""

    root = attr.ib(converter=Path)
    arch = attr.ib(default="arm64")
    timeout = attr.ib(default=600.0)

    def _options(self) -> list[str]:
        return [
            f"-oAPT::Architecture={self.arch}",
            f"-oAPT::Architectures={self.arch}",
            f"-oDir::State::Lists={self.root / 'lists'}",
            f"-oDir::State::status={self.root / 'status'}",
            f"-oDir::Cache={self.root / 'cache'}",
            "-oDebug::NoLocking=1",
            "-oAPT::Sandbox::User=root",
        ]

    def _run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        (self.root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "status").touch()
        cmd = [tool, *self._options(), *args]
        try:
            proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as e:
            raise AptError(f"{tool} {' '.join(args)} did not finish within {self.timeout:.0f} s") from e
        if proc.returncode != 0:
            raise AptError(f"{tool} {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
        return proc.stdout

    def update(self) -> None:
        self._run("apt-get", "-q", "update")

    def depends(self, package: str) -> list[str]:
        """Direct dependencies of a package (used to find the current kernel package)."""
        out = self._run("apt-cache", "depends", package)
        return [line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("Depends:")]

    def candidates(self, packages: list[str]) -> list[dict]:
        """Version, .deb file name and SHA256 of the candidate version of each package."""
        out = self._run("apt-cache", "show", "--no-all-versions", *packages)
        found = {}
        for stanza in out.split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(" "):
                    key, value = line.split(":", 1)
                    fields.setdefault(key, value.strip())
            if "Package" in fields and "Version" in fields:
                found.setdefault(fields["Package"], fields)
        result = []
        for package in packages:
            fields = found.get(package)
            if fields is None:
                raise AptError(f"package {package!r} ({self.arch}) is not in the apt index")
            version = fields["Version"]
            result.append({
                "package": package,
                "version": version,
                # apt-get download quotes the epoch colon in the file name it writes
                "deb": f"{package}_{version.replace(':', '%3a')}_{fields.get('Architecture', self.arch)}.deb",
                "sha256": fields.get("SHA256", ""),
            })
        return result

    def candidate(self, package: str) -> dict:
        return self.candidates([package])[0]

    def download(self, packages: list[dict], dest: Path) -> list[Path]:
        """Download resolved packages into dest, reusing files whose SHA256 matches."""
        dest.mkdir(parents=True, exist_ok=True)
        paths = []
        missing = []
        for pkg in packages:
            path = dest / pkg["deb"]
            if not (path.exists() and _sha256(path) == pkg["sha256"]):
                missing.append(f"{pkg['package']}={pkg['version']}")
            paths.append(path)
        if missing:
            self._run("apt-get", "-q", "download", *missing, cwd=dest)
        for pkg, path in zip(packages, paths, strict=True):
            if not path.exists():
                raise AptError(f"apt did not produce {path.name} for {pkg['package']}")
            if pkg["sha256"] and _sha256(path) != pkg["sha256"]:
                raise AptError(f"{path.name}: SHA256 does not match the apt index")
        return paths


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extract(deb: Path, dest: Path) -> None:
    """Unpack a .deb's data without root (dpkg-deb -x)."""
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise AptError(f"dpkg-deb -x {deb.name} failed: {proc.stderr.strip()}")
