# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.article_import in real ``ansible`` and ``ansible-playbook`` runs on localhost: the role it
writes, check mode, --diff, force, and a spec that would not load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import load_spec

TOP = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BIN = Path(sys.executable).parent


def ansible(cwd: Path, *args: str, playbook: bool = False,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(TOP / ".cache" / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_HOME=str(cwd / ".ansible"), ANSIBLE_LOCAL_TEMP=str(cwd / ".ansible" / "tmp"))
    env.update(extra_env or {})
    program = "ansible-playbook" if playbook else "ansible"
    command = [str(BIN / program), *args] if playbook else [str(BIN / program), "localhost", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def run_module(cwd: Path, module_args: str, *flags: str) -> dict[str, Any]:
    """One task in a real ansible-playbook run; its registered result is saved as JSON by a second task."""
    playbook = cwd / "import.yml"
    saved = cwd / "result.json"
    saved.unlink(missing_ok=True)
    args = dict(part.split("=", 1) for part in module_args.split())
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "connection": "local",
                                         "vars": {"ansible_python_interpreter": sys.executable},
                                         "tasks": [
                                             {"kbfix.windows.article_import": args, "register": "imported",
                                              "ignore_errors": True},
                                             {"ansible.builtin.copy": {"content": "{{ imported | to_json }}",
                                                                       "dest": str(saved)},
                                              "check_mode": False, "diff": False}]}]), encoding="utf-8")
    proc = ansible(cwd, "-i", "localhost,", str(playbook), *flags, playbook=True)
    assert saved.is_file(), proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(saved.read_text(encoding="utf-8"))
    return result


def test_writes_a_thin_role_whose_spec_loads(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "kb7100004.md", tmp_path)
    result = run_module(tmp_path, "src=kb7100004.md dest=articles")
    assert result["changed"] is True, result
    role = tmp_path / "articles" / "kb7100004"
    assert result["path"] == str(role / "files" / "kb7100004.yml")
    for name in ("README.md", "defaults/main.yml", "meta/argument_specs.yml", "meta/main.yml", "tasks/main.yml"):
        assert (role / name).is_file(), name
    spec = load_spec(role / "files" / "kb7100004.yml")
    assert spec.id == "KB7100004" and result["spec"]["article"]["id"] == "KB7100004"
    assert result["spec"]["files"][0]["date"] == "2011-08-05"  # JSON: dates as text
    assert result["report"]["shape"] == "markdown" and result["report"]["review"]
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    assert {"kb7100004_state", "kb7100004_restart"} <= set(specs["argument_specs"]["main"]["options"])
    # The role is one Ansible accepts: a play using it by name from the directory passes --syntax-check.
    (tmp_path / "site.yml").write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False,
                                                         "roles": ["kb7100004"]}]), encoding="utf-8")
    syntax = ansible(tmp_path, "-i", "localhost,", "--syntax-check", str(tmp_path / "site.yml"), playbook=True,
                     extra_env={"ANSIBLE_ROLES_PATH": str(tmp_path / "articles")})
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    # The second run changes nothing only with force; without it the role is never overwritten.
    again = run_module(tmp_path, "src=kb7100004.md dest=articles")
    assert again.get("failed") and "force" in again["msg"] and "not overwritten" in again["msg"]
    forced = run_module(tmp_path, "src=kb7100004.md dest=articles force=true")
    assert forced["changed"] is False and not forced.get("failed"), forced


def test_check_mode_writes_nothing_and_returns_the_same(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "kb7100002.txt", tmp_path)
    checked = run_module(tmp_path, "src=kb7100002.txt dest=articles", "--check", "--diff")
    assert checked["changed"] is True and not (tmp_path / "articles").exists()
    assert checked["diff"]["before"] == "" and "KB7100002" in checked["diff"]["after"]
    written = run_module(tmp_path, "src=kb7100002.txt dest=articles")
    assert written["spec"] == checked["spec"] and written["report"] == checked["report"]


def test_diff_shows_the_change_against_an_existing_spec(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "kb7100002.txt", tmp_path)
    run_module(tmp_path, "src=kb7100002.txt dest=articles")
    spec_file = tmp_path / "articles" / "kb7100002" / "files" / "kb7100002.yml"
    edited = spec_file.read_text(encoding="utf-8").replace("size: 123904", "size: 123905")
    spec_file.write_text(edited, encoding="utf-8")
    diff = run_module(tmp_path, "src=kb7100002.txt dest=articles force=true", "--check", "--diff")
    assert diff["changed"] is True
    assert "size: 123905" in diff["diff"]["before"] and "size: 123904" in diff["diff"]["after"]
    assert spec_file.read_text(encoding="utf-8") == edited  # check mode: still the edited file


def test_an_article_that_cannot_become_a_spec_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "kb7100009.txt").write_text("Article ID: 7100009\nA problem in a word processor.\n",
                                            encoding="utf-8")
    proc = ansible(tmp_path, "-m", "kbfix.windows.article_import", "-a", "src=kb7100009.txt dest=articles")
    assert proc.returncode != 0 and "names no Windows version" in proc.stdout + proc.stderr
    assert not (tmp_path / "articles").exists()
