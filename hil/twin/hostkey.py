"""The twin's SSH host key: fixed at build time so clients can pin it.

The key is derived from a constant seed, so every build on every machine gives the same
key and the published ``known_hosts`` line never changes. It protects nothing: it only
lets the suite run with strict host-key checking against the twin as it would against a
real board.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import attr
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SEED_LABEL = b"rk3576-hil virtual bench ssh host key v1"


def _sshstr(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


@attr.s(frozen=True)
class HostKey:
    seed = attr.ib(repr=False)

    @property
    def public(self) -> bytes:
        key = Ed25519PrivateKey.from_private_bytes(self.seed).public_key()
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def public_line(self) -> str:
        blob = _sshstr(b"ssh-ed25519") + _sshstr(self.public)
        return "ssh-ed25519 " + base64.b64encode(blob).decode()

    def dropbear_private(self) -> bytes:
        """dropbear's own key file format: name, then the 64-byte private||public blob."""
        return _sshstr(b"ssh-ed25519") + _sshstr(self.seed + self.public)


def derive() -> HostKey:
    return HostKey(hashlib.sha256(SEED_LABEL).digest())
