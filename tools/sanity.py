# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run every ``ansible-test sanity`` test on the collection as Galaxy ships it, and say what ran.

    tools/devenv python tools/sanity.py TARBALL WORKDIR

The tarball (``ansible-galaxy collection build``) is unpacked into
``WORKDIR/ansible_collections/kbfix/windows``, so sanity checks exactly what users install, with this
repository's ``tests/sanity/ignore-*.txt`` beside it (there are none today). ansible-test runs with
``--local --python 3.11``; it still makes one virtualenv per test with its own pinned checkers
(pylint, pycodestyle, voluptuous, yamllint, ...), bootstrapping pip with ``tools/ansible_test_get_pip.py``
instead of the script it would download from outside the package registries (see that file). HOME
points into WORKDIR so those virtualenvs are cached there, not in the user's home.

At the end a table lists every sanity test ansible-test knows with passed / failed / skipped and the
reason; the exit status is ansible-test's, and also non-zero when a test was skipped for a reason other
than having no files of its kind in the collection.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

from ansible_test._internal.python_requirements import get_venv_packages

HERE = Path(__file__).resolve().parent.parent
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
IGNORES = HERE / "tests" / "sanity"
# "Skipping sanity test ..." is fine only when the collection has nothing that test checks.
NO_TARGETS = "no targets"
# Tests whose files may be absent from this collection; ansible-test then "runs" them over nothing, without
# saying so, and the table says it instead.
FILE_KINDS = {"pslint": (".ps1", ".psm1", ".psd1"), "shellcheck": (".sh",)}


def prepare(tarball: Path, work: Path) -> Path:
    root = work / "ansible_collections" / "kbfix" / "windows"
    shutil.rmtree(work / "ansible_collections", ignore_errors=True)
    root.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        archive.extractall(root, filter="data")
    # Ignore files are not shipped (build_ignore drops tests/); the collection has none today, and one added to
    # tests/sanity/ is checked here as ansible-test reads it, from the collection's own tests/sanity/.
    if IGNORES.is_dir():
        shutil.copytree(IGNORES, root / "tests" / "sanity")
    # ansible-test lists the files to check with git when it finds a repository around them; without one
    # of its own the copy would be seen through this repository, where .cache is ignored.
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    pip = get_venv_packages(SimpleNamespace(version=PYTHON))["pip"]
    cache = work / "home" / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "tools" / "ansible_test_get_pip.py", cache / f"get_pip_{pip.replace('.', '_')}.py")
    return root


def listed_tests(root: Path, env: dict[str, str]) -> list[str]:
    out = subprocess.run(["ansible-test", "sanity", "--list-tests", "--local", "--python", PYTHON],
                         cwd=root, env=env, capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def main() -> int:
    tarball, work = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    root = prepare(tarball, work)
    env = {**os.environ, "HOME": str(work / "home")}
    tests = listed_tests(root, env)
    proc = subprocess.run(["ansible-test", "sanity", "--local", "--python", PYTHON, "--color", "no"],
                          cwd=root, env=env, capture_output=True, text=True, check=False)
    output = proc.stdout + proc.stderr
    (work / "sanity.log").write_text(output, encoding="utf-8")
    sys.stdout.write(output)
    results = summarise(tests, output)
    for name, suffixes in FILE_KINDS.items():
        if name in results and results[name][0] == "passed" and not any(
                p.suffix in suffixes for p in root.rglob("*") if p.is_file()):
            results[name] = ("nothing to check", f"{NO_TARGETS}: no {' / '.join(suffixes)} files in the collection")
    ignores = ", ".join(sorted(p.name for p in IGNORES.glob("ignore-*.txt"))) or "none"
    print(f"\nansible-test sanity on {tarball.name} (--local --python {PYTHON}), ignore files: {ignores}")
    for name in tests:
        state, reason = results[name]
        print(f"  {name:24} {state}{': ' + reason if reason else ''}")
    bad_skips = [n for n in tests if results[n][0] == "skipped" and NO_TARGETS not in results[n][1]]
    if bad_skips:
        print(f"skipped for a reason other than no files to check: {', '.join(bad_skips)}")
        return 1
    return proc.returncode


def summarise(tests: list[str], output: str) -> dict[str, tuple[str, str]]:
    """passed / failed / skipped per test, from ansible-test's own messages."""
    failed_block = output.split("sanity test(s) listed below", 1)[-1] if "listed below" in output else ""
    failed = {line.split()[0] for line in failed_block.splitlines()[1:] if line.strip()}
    ran = set(re.findall(r'Running sanity test "([^"]+)"', output))
    results: dict[str, tuple[str, str]] = {}
    for name in tests:
        skip = re.search(rf'Skipping sanity test "{re.escape(name)}"[^\n]*?(because|due to) ([^\n]*)', output)
        if name in failed:
            results[name] = ("FAILED", "")
        elif skip:
            results[name] = ("skipped", skip.group(2).rstrip("."))
        elif name in ran:
            results[name] = ("passed", "")
        else:
            results[name] = ("skipped", f"{NO_TARGETS} (ansible-test found no files it checks)")
    return results


if __name__ == "__main__":
    sys.exit(main())
