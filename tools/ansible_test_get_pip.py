# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stands in for ansible-test's pip bootstrap script (get-pip.py), which it downloads from a host outside the
package registries this project may reach (ansible_test/_util/target/setup/requirements.py, ``bootstrap``).

ansible-test creates each sanity virtualenv ``--without-pip`` and runs this file with the pip arguments it
would give get-pip.py (``pip==24.2 setuptools==... wheel==...`` and options). The same result comes from the
standard library: ``ensurepip`` puts the pip wheel bundled with Python into the virtualenv, and that pip then
installs exactly the versions ansible-test asked for from PyPI. ``make sanity`` copies this file to
``$HOME/.ansible/test/cache/get_pip_<version>.py`` under the project's own ``.cache`` home.
"""

from __future__ import annotations

import subprocess
import sys

# get-pip.py options that pip install does not know: they say which of its default extras to leave out.
LEAVE_OUT = {"--no-setuptools": "setuptools", "--no-wheel": "wheel"}


def main() -> None:
    args = [a for a in sys.argv[1:] if a not in LEAVE_OUT]
    left_out = [LEAVE_OUT[a] for a in sys.argv[1:] if a in LEAVE_OUT]
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*pip, "install", "-q", *args], check=True)
    # ensurepip also brings setuptools on Python 3.11; get-pip.py would not have installed it.
    if left_out:
        subprocess.run([*pip, "uninstall", "-q", "-y", *left_out], check=False, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
