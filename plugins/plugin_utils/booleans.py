# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one reading of true/false for values that arrive as text (inventory, extra-vars, spec variables).

Shared by every layer, like ``errors``: a real boolean, 0 or 1, or one of Ansible's usual words; anything else is
an ``ArgumentError`` naming the field, so a typo never turns a setting off (or a security opt-in on) silently.
"""

from __future__ import annotations

from typing import Any

from .errors import ArgumentError

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def parse_bool(value: Any, field: str, *, blank_is_false: bool = False) -> bool:
    """``value`` as a boolean. ``blank_is_false``: an empty string means false (an inventory variable set to
    nothing), else it is refused like any other word."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold() if isinstance(value, (str, int)) else None
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS or (blank_is_false and text == "" and isinstance(value, str)):
        return False
    raise ArgumentError(field, f"must be true or false, got {value!r}")
