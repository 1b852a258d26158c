# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Third-party Python packages a transport needs on the controller, imported so that their absence shows
only when that transport is used.

Ansible imports every plugin and ``plugin_utils`` module it lists (``ansible-doc``, ``ansible-test sanity
--test import``) in interpreters that need not have pywinrm, defusedxml or impacket; a module that imported them
unguarded could not even be documented there. So each transport module imports its packages in a ``try``
block and keeps what happened in a ``Requirement``::

    try:
        from winrm.protocol import Protocol
    except ImportError as exc:
        PYWINRM = Requirement.missing("pywinrm", "WinRM", exc)
    else:
        PYWINRM = Requirement.present("pywinrm", "WinRM")

and calls ``PYWINRM.require()`` where the transport starts to be used (building its client), before any
request, so a controller without the package gets ``MissingRequirementError`` naming the package, the
interpreter and the pip line that installs it, instead of a ``NameError`` deep in a request.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ..errors import MissingRequirementError


@dataclass(frozen=True)
class Requirement:
    """One pip package (``package``) that the ``transport`` named needs, and the import error if it failed."""

    package: str
    transport: str
    error: ImportError | None = None

    @classmethod
    def present(cls, package: str, transport: str) -> Requirement:
        return cls(package, transport)

    @classmethod
    def missing(cls, package: str, transport: str, error: ImportError) -> Requirement:
        return cls(package, transport, error)

    @property
    def available(self) -> bool:
        return self.error is None

    def require(self) -> None:
        """Raise ``MissingRequirementError`` if the package did not import; nothing otherwise."""
        if self.error is None:
            return
        # The module that failed may be a dependency of the package (requests under pywinrm): name both.
        module = self.error.name or str(self.error)
        raise MissingRequirementError(
            self.package,
            f"the {self.transport} transport needs the Python package {self.package} on the controller, and "
            f"{sys.executable} cannot import it (import of {module!r} failed: {self.error}); install it in "
            f"that interpreter with '{sys.executable} -m pip install {self.package}' (the collection's "
            f"requirements.txt lists every package with its version)")
