# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renders the HTML report in headless Chromium: the screenshot is a real, coloured page and the DOM the
browser built has the grid and counts the model says (and no element smuggled in through a host name)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from report_fleet import EVIL_HOST, NOW, build_fleet, grid_cells

from ansible_collections.kbfix.windows.plugins.plugin_utils.report.model import FleetReport
from ansible_collections.kbfix.windows.plugins.plugin_utils.report.writers import write_reports

CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 1280, 1600  # tall enough for the summaries and the grid

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="chromium is not installed (make setup installs it)"),
]


def _chromium(tmp: Path, page: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp / 'profile'}", *mode, page.as_uri()]
    env = dict(os.environ, HOME=str(tmp))  # keep Chromium's dot-files out of the real home
    return subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=90, check=False)


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) into rows of pixel bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0) and colour in (2, 6)
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows: list[bytes] = []
    prev = bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        prev = bytes(line)
        rows.append(prev if bpp == 3 else bytes(v for i, v in enumerate(prev) if i % 4 != 3))
    return width, height, rows


def _colours(rows: list[bytes]) -> Counter[bytes]:
    counts: Counter[bytes] = Counter()
    for row in rows[::3]:  # every third row is plenty to see the page's colours
        counts.update(row[i:i + 3] for i in range(0, len(row), 3))
    return counts


class _Dom(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("chromium")
    report = build_fleet()
    (page,) = write_reports(report, tmp / "out", ["html"], now=NOW)
    shot = tmp / "out.png"
    screenshot = _chromium(tmp, page, f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}")
    dom = _chromium(tmp, page, "--dump-dom")
    return {"report": report, "shot": shot, "screenshot": screenshot, "dom": dom}


def test_screenshot_is_a_png_of_the_requested_size(rendered: dict[str, Any]) -> None:
    shot: Path = rendered["shot"]
    assert shot.exists(), rendered["screenshot"].stderr[-2000:]
    width, height, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(rows) == HEIGHT


def test_screenshot_shows_the_coloured_grid(rendered: dict[str, Any]) -> None:
    _w, _h, rows = _png_pixels(rendered["shot"].read_bytes())
    colours = _colours(rows)
    assert len(colours) > 50, "the page looks blank"
    assert colours.most_common(1)[0][1] < 0.9 * sum(colours.values()), "one colour covers the page"
    # The status fills of the grid cells in the first screen (CSS custom properties in report.py).
    fills = {"header": "1b2a3a", "compliant": "dafbe1", "noncompliant": "ffe2de", "reboot_pending": "fff1bf",
             "unknown": "efe5ff", "failed": "ffd3c2", "unreachable": "3d4451"}
    for name, hex_colour in fills.items():
        assert colours[bytes.fromhex(hex_colour)] > 200, f"{name} fill #{hex_colour} not on screen"


def test_dom_has_the_cells_and_counts_of_the_model(rendered: dict[str, Any]) -> None:
    dom_run = rendered["dom"]
    assert dom_run.returncode == 0, dom_run.stderr[-2000:]
    dom = _Dom(dom_run.stdout)
    report: FleetReport = rendered["report"]
    cells = grid_cells(dom.elements)
    assert cells == {(h.name, c.article): c.status for h in report.hosts() for c in report.cells(h)}
    summary = report.summary()
    assert {a["data-status"]: int(a["data-hosts"]) for _t, a in dom.elements if "data-hosts" in a} \
        == summary.hosts_by_status
    assert {a["data-status"]: int(a["data-results"]) for _t, a in dom.elements if "data-results" in a} \
        == summary.results_by_status
    # the browser parsed the hostile host name as text: no element came out of it
    assert EVIL_HOST in dom.text
    assert not [t for t, _a in dom.elements if t == "img"]
    assert [t for t, _a in dom.elements].count("script") == 1  # the page's own filter script
