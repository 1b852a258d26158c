# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Windows as KB articles name it: products in "Applies to" and table headings, service packs, branches.

The service-pack build lines (the first revision of each XP / Server 2003 service pack, the build line of each
NT 6.x service pack) are the ones docs/sources.md gives with their sources; for a version outside them the
service pack is not guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    """One Windows family as a spec's applicability entry."""

    id: str
    name: str
    version: str
    product_types: tuple[int, ...]
    architectures: tuple[str, ...]  # what the family ships for, when a table does not say
    r2: bool | None = None
    caption_contains: tuple[str, ...] = ()


# Most specific names first: "Windows Server 2008 R2" before "Windows Server 2008".
PRODUCTS: tuple[tuple[str, Product], ...] = (
    ("windows nt server 4.0, terminal server edition",
     Product("nt4_tse", "Windows NT Server 4.0, Terminal Server Edition", "4.0.1381", (2, 3), ("x86",),
             caption_contains=("Terminal Server",))),
    ("windows nt", Product("nt4", "Windows NT 4.0", "4.0.1381", (1, 2, 3), ("x86", "alpha"))),
    ("windows 2000", Product("win2000", "Windows 2000", "5.0.2195", (1, 2, 3), ("x86",))),
    ("windows xp professional x64", Product("xp_x64", "Windows XP Professional x64 Edition", "5.2.3790", (1,),
                                            ("x64",))),
    ("windows xp", Product("xp", "Windows XP", "5.1.2600", (1,), ("x86",))),
    ("windows server 2003 r2", Product("ws2003r2", "Windows Server 2003 R2", "5.2.3790", (2, 3),
                                       ("x86", "x64", "ia64"), r2=True)),
    ("windows server 2003", Product("ws2003", "Windows Server 2003", "5.2.3790", (2, 3), ("x86", "x64", "ia64"))),
    ("windows vista", Product("vista", "Windows Vista", "6.0", (1,), ("x86", "x64"))),
    ("windows server 2008 r2", Product("ws2008r2", "Windows Server 2008 R2", "6.1", (2, 3), ("x64", "ia64"))),
    ("windows server 2008", Product("ws2008", "Windows Server 2008", "6.0", (2, 3), ("x86", "x64", "ia64"))),
    ("windows hpc server 2008", Product("ws2008", "Windows Server 2008", "6.0", (2, 3), ("x64",))),
    ("windows 7", Product("win7", "Windows 7", "6.1", (1,), ("x86", "x64"))),
    ("windows server 2012 r2", Product("ws2012r2", "Windows Server 2012 R2", "6.3", (2, 3), ("x64",))),
    ("windows server 2012", Product("ws2012", "Windows Server 2012", "6.2", (2, 3), ("x64",))),
    ("windows 8.1", Product("win81", "Windows 8.1", "6.3", (1,), ("x86", "x64"))),
    ("windows 8", Product("win8", "Windows 8", "6.2", (1,), ("x86", "x64"))),
)

_NT4_EDITIONS = {"workstation": (1,), "server": (2, 3)}


def products_in(text: str) -> list[Product]:
    """Every Windows family a heading or an "Applies to" line names, in order, each once."""
    folded = " ".join(text.casefold().replace("microsoft ", "").split())
    folded = folded.replace("windows nt server version 4.0, terminal server edition",
                            "windows nt server 4.0, terminal server edition")
    found: list[Product] = []
    taken: list[tuple[int, int]] = []
    for phrase, product in PRODUCTS:
        for match in re.finditer(re.escape(phrase) + r"(?![\w.])", folded):
            span = match.span()
            if any(a <= span[0] < b for a, b in taken):
                continue
            taken.append(span)
            if product.id == "nt4":
                product = _nt4_edition(folded[span[0]:span[0] + 40], product)
            if product not in found:
                found.append(product)
    return found


def _nt4_edition(text: str, product: Product) -> Product:
    for word, types in _NT4_EDITIONS.items():
        if text.startswith(f"windows nt {word}"):
            return Product(product.id, product.name, product.version, types, product.architectures)
    return product


def merge_products(products: list[Product]) -> list[Product]:
    """One entry per id; NT 4.0 Workstation and Server together cover every product type."""
    merged: dict[str, Product] = {}
    for product in products:
        known = merged.get(product.id)
        if known is None:
            merged[product.id] = product
        elif known.product_types != product.product_types:
            types = tuple(sorted(set(known.product_types) | set(product.product_types)))
            merged[product.id] = Product(known.id, known.name, known.version, types, known.architectures,
                                         known.r2, known.caption_contains)
    return list(merged.values())


def architectures_in(text: str) -> list[str]:
    folded = text.casefold()
    found = []
    for words, arch in ((("x86", "32-bit", "intel"), "x86"), (("x64", "64-bit", "amd64"), "x64"),
                        (("ia-64", "ia64", "itanium"), "ia64"), (("alpha",), "alpha")):
        if any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w])", folded) for w in words):
            if arch == "x64" and re.search(r"ia-64|itanium", folded) and "x64" not in folded \
                    and "64-bit" not in folded.replace("ia-64", ""):
                continue
            found.append(arch)
    return found


# Revision of the first build of each service pack on the XP / 2003 build lines (docs/sources.md).
SP_BASELINES: dict[tuple[int, int, int], tuple[tuple[int, int], ...]] = {
    (5, 1, 2600): ((1, 1106), (2, 2180), (3, 5512)),
    (5, 2, 3790): ((1, 1830), (2, 3959)),
}
# NT 6.x: the build line names the service pack.
NT6_BUILDS: dict[tuple[int, int, int], int] = {
    (6, 0, 6000): 0, (6, 0, 6001): 1, (6, 0, 6002): 2, (6, 1, 7600): 0, (6, 1, 7601): 1,
}


def service_pack_of(parts: tuple[int, int, int, int]) -> tuple[int | None, str]:
    """(service pack, how it was told) for a file version; None when the version does not tell."""
    line = parts[:3]
    if line in NT6_BUILDS:
        return NT6_BUILDS[line], f"build line {'.'.join(map(str, line))} is SP{NT6_BUILDS[line]}'s"
    if line in SP_BASELINES:
        sp = 0
        for number, first in SP_BASELINES[line]:
            if parts[3] >= first:
                sp = number
        return sp, f"revision {parts[3]} is on the SP{sp} line of {'.'.join(map(str, line))}"
    return None, ""


def sp_baseline(line: tuple[int, int, int], sp: int) -> int | None:
    for number, first in SP_BASELINES.get(line, ()):
        if number == sp:
            return first
    return 0 if line in SP_BASELINES and sp == 0 else None
