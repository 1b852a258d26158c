# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one check of a string that will reach Windows as a name (a host, a user, a URL path, a registry value).

Shared by every layer, like ``errors``: Windows strings end at the first NUL, so a NUL would silently name
something else; each name has a length Windows sets, and a longer one can only be a mistake.
"""

from __future__ import annotations

from typing import Any

from .errors import ArgumentError


def windows_string(value: Any, field: str, *, limit: int, what: str) -> str:
    """``value`` unchanged when it is a string without NUL of at most ``limit`` characters; otherwise an
    ``ArgumentError`` naming ``field`` and saying ``what`` the string names (never quoting the value)."""
    if not isinstance(value, str):
        raise ArgumentError(field, f"must be a string ({what}), not a {type(value).__name__}")
    if "\x00" in value:
        raise ArgumentError(field, "contains a NUL character, which no Windows string can carry")
    if len(value) > limit:
        raise ArgumentError(field, f"is {len(value)} characters long; {what} has at most {limit}")
    return value
