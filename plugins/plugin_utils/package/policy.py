# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a package file on the controller may be installed: its pinned hash, its Authenticode signature and
what it says about itself, against what the task expects (hotfix, host architecture and OS).

Every refusal is an ``ArgumentError`` naming the task's package field, the file, what was expected and what
was found, raised before the package is staged (and, where the caller checks early, before any request).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ArgumentError
from . import authenticode, identity

SHA256 = re.compile(r"^[0-9a-f]{64}$")
LOCK_VERSION = 1

# Host OS version (major.minor) each "Applies to" product names.
_PRODUCTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("windows server 2008 r2", ("6.1",)), ("windows 7", ("6.1",)),
    ("windows server 2008", ("6.0",)), ("windows vista", ("6.0",)),
    ("windows server 2003", ("5.2",)), ("windows xp", ("5.1", "5.2")),
    ("windows 2000", ("5.0",)), ("windows nt", ("4.0",)),
)


@dataclass(frozen=True)
class PackagePolicy:
    """How packages are judged on this host: trusted roots (Microsoft's, plus ``ca_files``), hashes pinned
    by file name (``sha256``, lower-case hex), and the file names allowed to be unsigned (the opt-out)."""

    ca_files: tuple[str, ...] = ()
    microsoft_roots: bool = True
    sha256: Mapping[str, str] = field(default_factory=dict)
    unsigned_allowed: frozenset[str] = frozenset()

    def pinned(self, filename: str) -> str | None:
        return self.sha256.get(filename.casefold())

    def may_be_unsigned(self, filename: str) -> bool:
        return filename.casefold() in self.unsigned_allowed


@dataclass(frozen=True)
class Expectation:
    """What the task wants the package to be. ``architecture`` / ``os_version`` are the host's, when known."""

    hotfix_id: str
    architecture: str | None = None
    os_version: str | None = None
    sha256: str | None = None  # the spec's package entry


@dataclass(frozen=True)
class PackageCheck:
    """A package that passed: its hash, its signature (None when it is an allowed unsigned package)."""

    filename: str
    sha256: str
    signature: authenticode.Signature | None
    unsigned_allowed: bool
    identity: identity.PackageIdentity

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.filename, "sha256": self.sha256,
                "signature": "unsigned_allowed" if self.unsigned_allowed else "verified",
                **({"signed_by": self.signature.to_dict()} if self.signature else {}),
                "identity": self.identity.to_dict()}


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_package(path: str, expected: Expectation, policy: PackagePolicy, field_name: str) -> PackageCheck:
    """Refuse (``ArgumentError`` on ``field_name``) a package that is not the genuine file for this task."""
    name = Path(path).name

    def refuse(problem: str) -> ArgumentError:
        return ArgumentError(field_name, f"refusing the package {path}: {problem}; nothing was sent to the host")

    actual = file_sha256(path)
    for origin, pin in (("the task expects", expected.sha256),
                        ("kbfix_package_sha256 / kbfix_package_lock expect", policy.pinned(name))):
        if pin is not None and pin != actual:
            raise refuse(f"{origin} SHA-256 {pin}, the file's is {actual}")
    found = identity.read_identity(path)
    problem = identity_problem(name, found, expected)
    if problem is not None:
        raise refuse(problem)
    trust = authenticode.trust_bundle(policy.ca_files, policy.microsoft_roots)
    answer = authenticode.verify(path, trust)
    roots = " and ".join(filter(None, ["Microsoft's root certificates" if policy.microsoft_roots else "",
                                       ", ".join(policy.ca_files)]))
    if not answer.signed and policy.may_be_unsigned(name):
        return PackageCheck(name, actual, None, True, found)
    if not answer.verified:
        hint = "" if answer.signed else " (list it in kbfix_package_unsigned to install it knowingly unsigned)"
        raise refuse(f"expected an Authenticode signature chaining to {roots}; {answer.problem}{hint}")
    return PackageCheck(name, actual, answer.signature, False, found)


def identity_problem(filename: str, found: identity.PackageIdentity, expected: Expectation) -> str | None:
    """Why the package's own description contradicts the task, or None."""
    where = "its VERSIONINFO" if found.source == "VERSIONINFO" else "its -pkgProperties.txt"
    number = re.sub(r"^(KB|Q)", "", expected.hotfix_id.upper())
    if found.kb is not None and found.kb != number:
        return f"expected a package for {expected.hotfix_id}, {where} names KB {found.kb}"
    named_arch = identity.file_name_architecture(filename)
    if found.architecture is not None:
        if expected.architecture is not None and found.architecture != expected.architecture:
            return (f"the host is {expected.architecture}, {where} says the package is for "
                    f"{found.architecture}")
        if named_arch is not None and found.architecture != named_arch:
            return f"the file name says {named_arch}, {where} says {found.architecture}"
    named_language = identity.file_name_language(filename)
    if found.language is not None and named_language is not None and found.language != named_language:
        return (f"the file name says language {named_language:#06x}, {where} says {found.language:#06x} "
                "(a package for another language)")
    if found.applies_to and expected.os_version:
        versions = applies_to_versions(found.applies_to)
        host = ".".join(expected.os_version.split(".")[:2])
        if versions and host not in versions:
            return f"the host runs Windows {host}, {where} says it applies to {found.applies_to}"
    return None


def applies_to_versions(text: str) -> tuple[str, ...]:
    lowered = text.casefold()
    for product, versions in _PRODUCTS:
        if product in lowered:
            return versions
    return ()


# --------------------------------------------------------------------------------------- configuration


def sha256_value(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not SHA256.fullmatch(value.strip().lower()):
        raise ArgumentError(field_name, f"must be a SHA-256 digest (64 hexadecimal digits), got {value!r}")
    return value.strip().lower()


def policy_from_settings(ca_file: Any, sha256: Any, unsigned: Any, lock: Mapping[str, Any] | None = None,
                         *, lock_field: str = "kbfix_package_lock") -> PackagePolicy:
    """The policy from a host's inventory variables: ``kbfix_package_trust_ca`` (a PEM file or a list of them),
    ``kbfix_package_sha256`` (file name -> digest), ``kbfix_package_unsigned`` (file names), and the parsed
    lock file of ``kbfix_package_lock``."""
    files: list[str] = []
    if ca_file:
        items = [ca_file] if isinstance(ca_file, str) else ca_file
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise ArgumentError("kbfix_package_trust_ca", f"must be a PEM file path or a list of them, got {ca_file!r}")
        for item in items:
            if not Path(item).is_file():
                raise ArgumentError("kbfix_package_trust_ca", f"{item} is not a file on the controller")
            files.append(item)
    pins: dict[str, str] = {}
    for source, table in ((lock_field, _lock_table(lock, lock_field)), ("kbfix_package_sha256", sha256)):
        if table is None:
            continue
        if not isinstance(table, Mapping):
            raise ArgumentError(source, f"must map package file names to SHA-256 digests, got {table!r}")
        for name, digest in table.items():
            if not isinstance(name, str) or not name or "/" in name or "\\" in name:
                raise ArgumentError(source, f"{name!r} is not a package file name")
            pins[name.casefold()] = sha256_value(digest, f"{source}.{name}")
    allowed: set[str] = set()
    if unsigned is not None:
        if not isinstance(unsigned, list) or not all(isinstance(n, str) and n for n in unsigned):
            raise ArgumentError("kbfix_package_unsigned", f"must be a list of package file names, got {unsigned!r}")
        allowed = {n.casefold() for n in unsigned}
    return PackagePolicy(ca_files=tuple(files), sha256=pins, unsigned_allowed=frozenset(allowed))


def _lock_table(lock: Mapping[str, Any] | None, field_name: str) -> Mapping[str, Any] | None:
    if lock is None:
        return None
    if not isinstance(lock, Mapping) or lock.get("version") != LOCK_VERSION or \
            not isinstance(lock.get("packages"), Mapping):
        raise ArgumentError(field_name, f"is not a package lock file (version: {LOCK_VERSION} and packages: "
                                        "file name -> sha256, as kbfix.windows.package_lock writes)")
    table = {}
    for name, entry in lock["packages"].items():
        digest = entry.get("sha256") if isinstance(entry, Mapping) else entry
        table[name] = digest
    return table


def lock_document(checks: list[PackageCheck]) -> dict[str, Any]:
    """The lock file's content for packages that passed ``check_package``."""
    return {"version": LOCK_VERSION, "packages": {
        c.filename: {"sha256": c.sha256, "signature": "unsigned_allowed" if c.unsigned_allowed else "verified",
                     **({"signer": c.signature.signer} if c.signature else {})}
        for c in sorted(checks, key=lambda c: c.filename.casefold())}}
