"""A test code-signing CA, and Authenticode signatures on winsim's packages made with a real signing tool.

Real hotfix packages carry Microsoft's Authenticode signature (PE files in their certificate table, ``.msu``
cabinets in the cabinet's reserved header area). winsim cannot sign as Microsoft, so its packages are signed by
a test CA: ``openssl`` makes the root and a code-signing certificate (extendedKeyUsage codeSigning), Debian's
``osslsigncode`` signs exactly as ``signtool.exe`` does. A collection that trusts this CA explicitly then
verifies winsim's packages as it verifies Microsoft's against Microsoft's roots.

The CA lives in a directory shared by processes (``WINSIM_CACHE_DIR``, like pe.py's cache), made once; an
*expired* signing certificate from the same CA is kept beside it for the tests that must see it refused.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import pe

OSSLSIGNCODE = "osslsigncode"
OPENSSL = "openssl"
_CA_FORMAT = "1"  # bump when the certificates below change


class SigningError(RuntimeError):
    """openssl or osslsigncode failed (or is missing)."""


@dataclass(frozen=True)
class TestCA:
    """A root CA (``ca_file``: what an inventory trusts) and signing certificates it issued."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def signer(self, expired: bool = False) -> tuple[Path, Path]:
        name = "expired" if expired else "signer"
        return self.directory / f"{name}.pem", self.directory / f"{name}.key"

    def sign(self, path: Path, *, expired: bool = False) -> Path:
        """Sign ``path`` in place (PE or cabinet, osslsigncode tells them apart), SHA-256, no timestamp."""
        cert, key = self.signer(expired)
        out = path.with_name(path.name + ".signing")
        _run([OSSLSIGNCODE, "sign", "-certs", str(cert), "-key", str(key), "-h", "sha256",
              "-n", "winsim test package", "-in", str(path), "-out", str(out)])
        os.replace(out, path)
        return path


def _run(command: list[str], cwd: Path | None = None) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)
    except FileNotFoundError as exc:
        package = "osslsigncode" if command[0] == OSSLSIGNCODE else "openssl"
        raise SigningError(f"{command[0]} not found: install the Debian package {package} (make setup)") from exc
    if result.returncode != 0:
        raise SigningError(f"{' '.join(command[:2])} failed: {(result.stderr or result.stdout).strip()[:500]}")


# ``openssl ca`` (not ``x509 -req``) because OpenSSL 3.0's x509 cannot set a validity window in the past.
_CA_CONFIG = """[ca]
default_ca = test
[test]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
[any]
organizationName = supplied
commonName = supplied
[root]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[signer]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
# (name, notBefore, notAfter): a current signer, and one whose validity ended long before any test runs.
_SIGNERS = (("signer", "20200101000000Z", "20491231000000Z"), ("expired", "20100101000000Z", "20110101000000Z"))


def _make_ca(directory: Path) -> None:
    (directory / "ca.cnf").write_text(_CA_CONFIG)
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("1000\n")
    config = ["-config", "ca.cnf"]
    _run([OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.csr",
          "-subj", "/O=winsim/CN=winsim Test Code Signing Root", "-config", "/dev/null"], directory)
    _run([OPENSSL, "ca", "-batch", *config, "-selfsign", "-keyfile", "ca.key", "-in", "ca.csr", "-out", "ca.pem",
          "-startdate", "20200101000000Z", "-enddate", "20491231000000Z", "-extensions", "root", "-notext"],
         directory)
    for name, start, end in _SIGNERS:
        _run([OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
              "-subj", f"/O=winsim/CN=winsim Test Package Signer ({name})", "-config", "/dev/null"], directory)
        _run([OPENSSL, "ca", "-batch", *config, "-cert", "ca.pem", "-keyfile", "ca.key", "-in", f"{name}.csr",
              "-out", f"{name}.pem", "-startdate", start, "-enddate", end, "-extensions", "signer", "-notext"],
             directory)


def signing_ca() -> TestCA:
    """The shared test CA, made on first use (by one process at a time)."""
    directory = pe.cache_dir() / f"signing-ca-{_CA_FORMAT}"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".signing-ca-{_CA_FORMAT}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / "expired.pem").is_file():
            with tempfile.TemporaryDirectory(dir=directory.parent, prefix=".ca-") as work:
                _make_ca(Path(work))
                for item in Path(work).iterdir():
                    os.replace(item, directory / item.name)
    return TestCA(directory)
