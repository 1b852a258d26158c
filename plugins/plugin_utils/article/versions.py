# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Windows file versions: parse, order, build line and servicing branch.

A version is the four numbers of VS_FIXEDFILEINFO (``major.minor.build.revision``). Windows also reports a
FileVersion *string* that often carries a build tag, ``5.1.2600.1276 (xpsp2.030422-1633)``; the tag never
changes the order of two versions, but on XP / Server 2003 it is the only thing that tells the GDR branch
from the QFE (LDR) branch, because both branches share one revision sequence there.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Literal

Branch = Literal["gdr", "ldr", "baseline", "unknown"]
BRANCHES: tuple[str, ...] = ("gdr", "ldr", "baseline", "unknown")

# Each part of VS_FIXEDFILEINFO is a 16-bit half of a DWORD.
_PART_MAX = 0xFFFF
_NUMBERS = re.compile(r"^\s*(\d+)\s*[.,]\s*(\d+)\s*[.,]\s*(\d+)\s*[.,]\s*(\d+)\s*(.*)$", re.DOTALL)
# A build tag as the build lab stamps it: "(xpsp_sp2_qfe.070315-1311)", "(srv03_sp2_rtm.070216-1710)".
_TAG = re.compile(r"^\(\s*([A-Za-z0-9_]+)\.(\d{6})-(\d{4})\s*\)$")

# NT 6.x revision ranges (Vista through 8.1): 16000-19999 GDR, 20000-29999 LDR; below 16000 is the
# RTM / service-pack milestone itself (6.0.6001.18000 is the SP1 release of the GDR line, hence >= 16000).
_NT6_GDR_FLOOR = 16000
_NT6_LDR_FLOOR = 20000
_NT6_LDR_CEILING = 30000


@functools.total_ordering
@dataclass(frozen=True)
class WinVersion:
    """A four-part Windows version. Equality, hashing and order use the numbers only; ``tag`` is the
    build tag from the FileVersion string (``xpsp2.030422-1633``) or ``""``."""

    major: int
    minor: int
    build: int
    revision: int
    tag: str = field(default="", compare=False, hash=False)

    def __post_init__(self) -> None:
        for name in ("major", "minor", "build", "revision"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _PART_MAX:
                raise ValueError(f"version part {name}={value!r} is not an integer 0..{_PART_MAX}")

    @classmethod
    def parse(cls, text: str) -> WinVersion:
        """Parse ``5.1.2600.1276``, ``5.1.2600.1276 (xpsp2.030422-1633)`` or the resource style
        ``5, 1, 2600, 1276``. Anything else raises ``ValueError`` quoting the text."""
        if not isinstance(text, str):
            raise ValueError(f"{text!r} is not a version string")
        match = _NUMBERS.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a four-part version")
        numbers = [int(part) for part in match.group(1, 2, 3, 4)]
        if any(n > _PART_MAX for n in numbers):
            raise ValueError(f"{text!r}: each version part must be 0..{_PART_MAX}")
        rest = match.group(5).strip()
        tag = ""
        if rest:
            tag_match = _TAG.match(rest)
            # A suffix that is not a build tag is kept verbatim (some vendors write free text there), but
            # an unparenthesised tail like "5.1.2600.1276x" is garbage, not a version.
            if tag_match is not None:
                tag = tag_match.group(0)[1:-1].strip()
            elif rest.startswith("("):
                tag = rest.strip("() ")
            else:
                raise ValueError(f"{text!r} is not a four-part version")
        return cls(numbers[0], numbers[1], numbers[2], numbers[3], tag)

    @property
    def parts(self) -> tuple[int, int, int, int]:
        return (self.major, self.minor, self.build, self.revision)

    @property
    def build_line(self) -> tuple[int, int, int]:
        """``major.minor.build``: on NT 6.x each service pack has its own build line (6.0.6001, 6.0.6002);
        on XP / 2003 every service pack shares one (5.1.2600) and only the revision tells them apart."""
        return (self.major, self.minor, self.build)

    @property
    def build_line_text(self) -> str:
        return ".".join(str(n) for n in self.build_line)

    def branch(self) -> Branch:
        """The servicing branch this file was built on.

        NT 6.x: from the revision (16xxx-19xxx GDR, 2xxxx LDR, below 16000 the RTM / SP milestone).
        XP / 2003 (and older): GDR and QFE files share one numbering, so only the build tag tells:
        ``qfe`` or ``ldr`` in it -> LDR, ``gdr`` -> GDR, any other well-formed tag (``xpsp2.``,
        ``srv03_sp2_rtm.``) -> the service-pack baseline. No tag, or a version from another era: unknown.
        """
        if self.major == 6:
            if self.revision < _NT6_GDR_FLOOR:
                return "baseline"
            if self.revision < _NT6_LDR_FLOOR:
                return "gdr"
            if self.revision < _NT6_LDR_CEILING:
                return "ldr"
            return "unknown"
        if self.major < 6 and _TAG.match(f"({self.tag})"):
            lab = self.tag.split(".", 1)[0].casefold()
            if "qfe" in lab or "ldr" in lab:
                return "ldr"
            if "gdr" in lab:
                return "gdr"
            return "baseline"
        return "unknown"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, WinVersion):
            return NotImplemented
        return self.parts < other.parts

    def __str__(self) -> str:
        return ".".join(str(n) for n in self.parts)

    def full_text(self) -> str:
        """The version as Windows shows it, tag included."""
        return f"{self} ({self.tag})" if self.tag else str(self)


def parse_version(text: str) -> WinVersion:
    """Module-level alias of ``WinVersion.parse``."""
    return WinVersion.parse(text)


def parse_build_line(text: str) -> tuple[int, ...]:
    """Parse an OS version prefix as the specs and ``OsFacts.version`` write it: ``6.0`` or ``5.1.2600``."""
    if not isinstance(text, str) or not re.fullmatch(r"\d+\.\d+(\.\d+)?", text.strip()):
        raise ValueError(f"{text!r} is not a major.minor or major.minor.build version")
    return tuple(int(part) for part in text.strip().split("."))
