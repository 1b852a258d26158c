# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry values over ``\\pipe\\winreg`` (``registry.RemoteRegistry``): reads retried on a new session,
writes read back (and repeated only after a read-back showed they did not land)."""

from __future__ import annotations

from collections.abc import Iterable

from ...article.model import RegistryType, RegistryValue
from ...errors import ArgumentError, HostUnreachableError, KbfixError, WriteVerificationError
from ..base import LOG_STEPS, MAX_VALUE_NAME, RegistryChange, check_registry_value, same_value
from ..registry_path import parse_key
from .host import SmbHost
from .registry import encode, show


def checked_key(key: str, *names: str) -> str:
    """The parsed key as text; a bad key or value name is an ArgumentError before any request."""
    path = str(parse_key(key))
    for name in names:
        if not isinstance(name, str) or "\0" in name or len(name) > MAX_VALUE_NAME:
            raise ArgumentError("name", f"{str(name)[:80]!r} is not a registry value name (no NUL, at most "
                                        f"{MAX_VALUE_NAME} characters)")
    return path


class RegistryJobs(SmbHost):
    """Registry reads and verified writes."""

    def read_value(self, key: str, name: str, expected: RegistryType | None = None) -> RegistryValue | None:
        """Type and data of ``key\\name`` (None: it or its key does not exist). One BaseRegQueryValue returns
        the real type with the data, so ``expected`` is only informative here."""
        del expected
        checked_key(key, name)
        return self._read(f"{key}\\{name}", lambda: self.registry.read_value(key, name))

    def read_values(self, key: str, names: Iterable[str]) -> dict[str, RegistryValue | None]:
        wanted = list(names)
        checked_key(key, *wanted)
        return self._read(f"values of {key}", lambda: {n: self.registry.read_value(key, n) for n in wanted})

    def key_exists(self, key: str) -> bool:
        parse_key(key)
        return self._read(f"key {key}", lambda: self.registry.open(key) is not None)

    def enum_keys(self, key: str) -> list[str] | None:
        parse_key(key)
        return self._read(f"subkeys of {key}", lambda: self.registry.enum_keys(key))

    def check_write(self, key: str, name: str, value: RegistryValue) -> None:
        """Refuse, before any request, a value the registry cannot hold or the data cannot be encoded as.

        Only the registry's limits apply here. Unlike a WS-Man envelope (MaxEnvelopeSizekb, which WinRM
        refuses whole), an RPC request has no size cap of that kind: impacket splits BaseRegSetValue into
        DCE/RPC fragments of the negotiated size and each into SMB writes of the server's MaxBufferSize, so
        any value the registry accepts can be carried."""
        checked_key(key, name)
        check_registry_value(name, value)
        encode(value)  # the data's own form (a dword's range, a multistring's items)

    def set_value(self, key: str, name: str, value: RegistryValue, *, create: bool = False) -> RegistryChange:
        """Write ``value`` and read it back (``WriteVerificationError`` if the host keeps something else).
        The data is checked before any request, and a key created for the value is removed again when the
        value cannot be written, so a failed write leaves nothing behind."""
        path = checked_key(key, name)
        what = f"{path}\\{name}"
        self.check_write(path, name, value)  # before the first request: never a key without its value
        type_code, raw = encode(value)
        before = self.read_value(path, name)
        if same_value(value, before):
            return RegistryChange(False, before, before)
        created: list[str] = []
        try:
            if create:
                created = self.registry.create(path)
            self.registry.set(path, name, type_code, raw)
        except HostUnreachableError:
            self.close()
            after = self.read_value(path, name)  # the write may or may not have arrived: look before repeating
            if not same_value(value, after):
                self.registry.set(path, name, type_code, raw)
        except KbfixError:
            if created:
                self.registry.remove_keys(created)
            raise
        after = self.read_value(path, name)
        if not same_value(value, after):
            if created:
                # The host took the write but keeps something else: the keys made for it go again, with
                # whatever half-written data they hold.
                self.registry.remove_keys(created)
            raise WriteVerificationError(f"{self.host}: wrote {what} = {show(value)} but read back {show(after)}")
        self.log(LOG_STEPS, f"{self.host}: set {what} to {show(value)} (was {show(before)})")
        return RegistryChange(True, before, after)

    def delete_value(self, key: str, name: str) -> RegistryChange:
        path = checked_key(key, name)
        before = self.read_value(path, name)
        if before is None:
            return RegistryChange(False, None, None)
        try:
            self.registry.delete(path, name)
        except HostUnreachableError:
            self.close()
            if self.read_value(path, name) is not None:
                self.registry.delete(path, name)
        after = self.read_value(path, name)
        if after is not None:
            raise WriteVerificationError(f"{self.host}: deleted {path}\\{name} but it still reads {show(after)}")
        self.log(LOG_STEPS, f"{self.host}: deleted {path}\\{name} (was {show(before)})")
        return RegistryChange(True, before, None)
