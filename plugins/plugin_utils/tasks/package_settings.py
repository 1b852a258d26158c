# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory variables that decide how packages are judged before they are installed, and the
``kbfix.windows.package_lock`` task that records the hashes of a directory of verified packages.

Variables (per host or group, all optional):

* ``kbfix_package_trust_ca``: a PEM file (or a list) of CA certificates trusted besides Microsoft's roots,
  e.g. a site CA that signs repackaged files;
* ``kbfix_package_sha256``: package file name -> SHA-256; ``kbfix_package_lock``: a lock file written by
  ``kbfix.windows.package_lock`` (same meaning); a file whose hash differs is refused;
* ``kbfix_package_unsigned``: package file names that may be installed without a signature (the opt-out;
  results and the fleet report show it was used).
"""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

import yaml

from ..errors import ArgumentError
from ..package import policy

TRUST_CA = "kbfix_package_trust_ca"
SHA256 = "kbfix_package_sha256"
LOCK = "kbfix_package_lock"
UNSIGNED = "kbfix_package_unsigned"
VARIABLES = (TRUST_CA, SHA256, LOCK, UNSIGNED)
PACKAGE_EXTENSIONS = (".exe", ".msu")


def host_policy(variable: t.Callable[[str], t.Any]) -> policy.PackagePolicy:
    """The policy from the host's variables (``variable(name)`` templated, None when unset)."""
    lock_path = variable(LOCK)
    lock = None
    if lock_path is not None:
        if not isinstance(lock_path, str) or not lock_path:
            raise ArgumentError(LOCK, f"must be the path of a lock file, got {lock_path!r}")
        lock = read_lock(lock_path)
    return policy.policy_from_settings(variable(TRUST_CA), variable(SHA256), variable(UNSIGNED), lock)


def sha256_argument(value: t.Any, field_name: str) -> str | None:
    """A task's ``sha256`` argument, lower-case; None when not given."""
    return None if value is None else policy.sha256_value(value, field_name)


def read_lock(path: str) -> t.Any:
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ArgumentError(LOCK, f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ArgumentError(LOCK, f"{path} is not YAML: {exc}") from None


def lock_directory(directory: str, dest: str, rules: policy.PackagePolicy, *, write: bool = True) -> dict[str, t.Any]:
    """Judge every package in ``directory`` (signature and own description; refused as a task would refuse
    it) and write the lock file ``dest``. Returns the task result."""
    root = Path(directory)
    if not root.is_dir():
        raise ArgumentError("path", f"{directory} is not a directory of packages on the controller")
    names = sorted((p for p in root.iterdir() if p.is_file() and p.suffix.casefold() in PACKAGE_EXTENSIONS),
                   key=lambda p: p.name.casefold())
    if not names:
        raise ArgumentError("path", f"{directory} holds no .exe or .msu packages")
    checks = []
    for path in names:
        hotfix = _hotfix_in_name(path.name)
        checks.append(policy.check_package(str(path), policy.Expectation(hotfix), rules, "path"))
    document = policy.lock_document(checks)
    text = "# Written by kbfix.windows.package_lock: SHA-256 of packages whose signature was verified.\n" + \
        yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    target = Path(dest)
    before = target.read_text(encoding="utf-8") if target.is_file() else None
    changed = before != text
    if changed and write:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    return {"changed": changed, "dest": str(target), "packages": [c.to_dict() for c in checks]}


def _hotfix_in_name(name: str) -> str:
    match = re.search(r"(?<![A-Za-z0-9])(KB|Q)(\d{5,7})(?!\d)", name, re.IGNORECASE)
    if match is None:
        raise ArgumentError("path", f"{name} does not name its hotfix (KB977381, Q253729) as Microsoft's "
                                    "package names do")
    return match.group(1).upper() + match.group(2)
