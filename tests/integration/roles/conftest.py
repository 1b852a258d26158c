# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the role and playbook tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from winsim import packages


@pytest.fixture(scope="session")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every package of winsim's catalogue, built once: a controller-side package source."""
    directory = tmp_path_factory.mktemp("packages")
    for name in packages.package_names():
        packages.write_package(name, directory)
    return directory
