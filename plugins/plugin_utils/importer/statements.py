# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an article states in words: its id and title, "Applies to", "first corrected in", restart,
replacement and prerequisites."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .model import Document, Findings
from .windows import Product, merge_products, products_in


@dataclass
class Statements:
    number: str  # "938475"
    q_article: bool
    title: str
    title_guessed: bool
    applies_to: list[Product]
    fixed_in: dict[str, int] = field(default_factory=dict)  # product id -> service pack
    restart: bool | None = None
    restart_text: str = ""
    supersedes: list[str] = field(default_factory=list)
    prerequisites: list[str] = field(default_factory=list)
    # "6.0.6001.22xxx | Windows Server 2008 | SP1 | LDR": build line -> (branch, first revision of its range)
    branch_ranges: dict[tuple[str, str], int] = field(default_factory=dict)
    package_files: list[str] = field(default_factory=list)  # installer names the article gives


_ID_LABELS = (r"DOCUMENT:\s*Q(\d{5,7})", r"Article ID:\s*(\d{5,7})", r"Original KB number:\s*(\d{5,7})",
              r"Article:\s*Q(\d{5,7})", r"\bKB(\d{5,7})\b")


def read_statements(doc: Document, findings: Findings, name_hint: str = "") -> Statements:
    text = "\n".join(doc.lines)
    number, q_article = _number(text, name_hint)
    title, guessed = _title(doc)
    statements = Statements(number=number, q_article=q_article, title=title, title_guessed=guessed,
                            applies_to=_applies_to(doc.lines))
    flat = " ".join(text.split())
    for match in re.finditer(r"first corrected in ((?:Microsoft )?Windows[^.]*?) Service Pack (\d)", flat):
        for product in products_in(match[1]):
            statements.fixed_in[product.id] = int(match[2])
    _restart(flat, statements)
    _replacement(flat, statements, number)
    _prerequisites(doc.lines, statements)
    _branch_ranges(text, statements)
    statements.package_files = _package_files(flat, number)
    return statements


def _package_files(flat: str, number: str) -> list[str]:
    """Installer file names the article gives ("Download Q266433i.exe now", "Windows6.0-KB938475-x86.msu")."""
    if not number:
        return []
    found = re.findall(rf"\b([\w.-]*(?:KB|Q){number}[\w.-]*\.(?:exe|msu))\b", flat, re.IGNORECASE)
    return list(dict.fromkeys(found))


def _branch_ranges(text: str, statements: Statements) -> None:
    """The file-information notes of NT 6.x articles: "6.0.6001.22xxx ... SP1 ... LDR" names the revision
    range of each branch (browser copies break these cells over several lines, hence whitespace is ignored)."""
    squeezed = "".join(text.split())
    for match in re.finditer(r"(\d+\.\d+\.\d{4})\.(\d{1,3})xxx(.{0,120}?)(LDR|GDR)", squeezed):
        if "xxx" in match[3]:
            continue
        digits = match[2]
        statements.branch_ranges[(match[1], match[4].casefold())] = int(digits) * 10 ** (5 - len(digits))


def _number(text: str, name_hint: str) -> tuple[str, bool]:
    for pattern in _ID_LABELS:
        match = re.search(pattern, text)
        if match:
            return match[1], pattern.startswith(("DOCUMENT", "Article:"))
    match = re.search(r"(\d{5,7})", name_hint)
    if match:
        return match[1], False
    return "", False


def _title(doc: Document) -> tuple[str, bool]:
    for line in doc.lines:
        stripped = line.strip()
        if stripped.startswith("TITLE") and ":" in stripped:
            return stripped.split(":", 1)[1].strip(), False
        if stripped.startswith("# "):
            return re.sub(r"^Q\d+:\s*", "", stripped[2:].strip()), False
    for line in doc.lines:
        stripped = line.strip()
        folded = stripped.casefold()
        if len(stripped) > 20 and re.search(r"[a-z]", stripped) and "knowledge base" not in folded \
                and not any(w in folded for w in ("copyright", "rights reserved", "\u00a9")) \
                and "microsoft" not in folded[:20] and not stripped.startswith(("|", "http", "Article ID")):
            return stripped[:200], True
    return "", True


def _applies_to(lines: list[str]) -> list[Product]:
    """The products of the "Applies to" block (Q-article list, Markdown line, web page list)."""
    found = []
    for index, line in enumerate(lines):
        folded = line.casefold()
        if "applies to" in folded or "original product version" in folded \
                or "information in this article applies to" in folded:
            block = [line.split(":", 1)[1] if ":" in line else ""]
            for following in lines[index + 1:index + 30]:
                stripped = following.strip().lstrip("-•*").strip()
                if not stripped and block[-1]:
                    if len(block) > 1:
                        break
                    continue
                if set(stripped) <= set("-="):
                    if len(block) > 1:
                        break
                    continue
                if not products_in(stripped) and len(block) > 1:
                    break
                block.append(stripped)
            found.extend(products_in(" ; ".join(block)))
    if not found:
        # Browser copies lose the "Applies to" heading: its list stays, bullet lines of Windows products,
        # or one comma-separated line near the end.
        for line in lines:
            stripped = line.strip().lstrip("-•*").strip()
            if stripped.casefold().startswith(("windows", "microsoft windows")) and len(stripped) < 200 \
                    and not stripped.endswith((".", ":")):
                found.extend(products_in(stripped))
    return merge_products(found)


def _restart(flat: str, statements: Statements) -> None:
    negative = re.search(r"(?:do not|don't|does not) (?:have to|need to|must) restart|"
                         r"no restart is required|does not require (?:a|you to) restart", flat, re.IGNORECASE)
    positive = re.search(r"(?:must|have to|need to|should) restart (?:the|your) computer|"
                         r"restart (?:the|your) computer after you apply|"
                         r"(?:requires|require) (?:a|you to) restart", flat, re.IGNORECASE)
    if negative:
        statements.restart, statements.restart_text = False, negative[0]
    elif positive:
        statements.restart, statements.restart_text = True, positive[0]


def _replacement(flat: str, statements: Statements, number: str) -> None:
    match = re.search(r"Hotfix replacement information\s*(.{0,300})", flat, re.IGNORECASE)
    if not match:
        return
    sentence = match[1].split(". ")[0]
    if re.search(r"does not replace", sentence, re.IGNORECASE):
        return
    for found in re.findall(r"\b(?:KB|Q)?(\d{6,7})\b", sentence):
        if found != number:
            statements.supersedes.append(f"KB{found}")


def _prerequisites(lines: list[str], statements: Statements) -> None:
    """Sentences of the Prerequisites section that require something besides the Windows version (which the
    applicability entries already say): "The DFS Replication service ... must be installed"."""
    for index, line in enumerate(lines):
        if "no prerequisites" in line.casefold():
            return
        position = line.find("Prerequisite")
        if position < 0 or "hotfix prerequisite" in line.casefold():
            continue
        for following in [line[position:].split(" ", 1)[-1], *lines[index + 1:index + 12]]:
            stripped = following.strip()
            if re.search(r"Restart requirement|Hotfix replacement|File information|Registry information",
                         stripped, re.IGNORECASE):
                stripped = re.split(r"Restart requirement|Hotfix replacement|File information|Registry information",
                                    stripped, flags=re.IGNORECASE)[0]
                if "must be installed" in stripped:
                    statements.prerequisites.append(stripped.strip())
                break
            if "must be installed" in stripped or "must be enabled" in stripped:
                statements.prerequisites.append(stripped)
        return
