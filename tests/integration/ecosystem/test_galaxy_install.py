# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as a Galaxy user gets it: ``ansible-galaxy collection build`` from this tree, install the
tarball into an empty collections path, then ``ansible-doc`` and the audit playbook from there (against a
winsim host), and the execution environment of docs/scale.md through ``ansible-builder``.

Every command runs with ANSIBLE_COLLECTIONS_PATH set to the install path alone, and without the
development tree on PYTHONPATH, so nothing can resolve to the working tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import run_playbook

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))["version"]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
# What only developers need; none of it may be in the tarball.
DEVELOPMENT_ONLY = ("tests/", "bench/", "tools/", "extensions/", "requirements/", ".ci/", "Makefile",
                    "pyproject.toml", ".venv", ".cache", "report/", "build/")


def clean_env(collections: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               ANSIBLE_HOME=str(collections.parent / "ansible-home"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(collections.parent / "tmp"))
    env["PYTHONPATH"] = ""  # the Makefile's PYTHONPATH holds the development tree's ansible_collections
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_and_install(tmp_path_factory.mktemp("galaxy"))


def build_and_install(work: Path) -> dict[str, Any]:
    """``ansible-galaxy collection build`` of this tree into ``work``, installed into an empty collections path
    there; the environment that sees only that install."""
    collections = work / "collections"
    collections.mkdir()
    env = clean_env(collections)
    built = run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work), str(ROOT)],
                env, work)
    tarball = work / f"kbfix-windows-{VERSION}.tar.gz"
    assert built.returncode == 0 and tarball.exists(), built.stdout + built.stderr
    install = run([str(BIN / "ansible-galaxy"), "collection", "install", "-p", str(collections), str(tarball)],
                  env, work)
    assert install.returncode == 0, install.stdout + install.stderr
    return {"work": work, "tarball": tarball, "collections": collections, "env": env,
            "root": collections / "ansible_collections" / "kbfix" / "windows"}


def test_tarball_ships_what_a_user_needs_and_no_development_files(installed: dict[str, Any]) -> None:
    with tarfile.open(installed["tarball"]) as archive:
        names = [m.name for m in archive.getmembers() if m.isfile()]
    assert not [n for n in names if n.startswith(DEVELOPMENT_ONLY)], [n for n in names if n.startswith(
        DEVELOPMENT_ONLY)][:20]
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".tar.gz")) or "/." in f"/{n}"]
    for name in MODULES:
        assert f"plugins/modules/{name}.py" in names and f"plugins/action/{name}.py" in names
    for spec in ROOT.glob("roles/*/files/*.yml"):
        assert str(spec.relative_to(ROOT)) in names
    # what ansible-builder reads from an installed collection, and what a user reads first
    ee = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text(encoding="utf-8"))
    needed = ["meta/runtime.yml", "meta/execution-environment.yml", *ee["dependencies"].values(),
              "requirements.txt", "playbooks/audit.yml", "playbooks/remediate.yml", "README.md",
              "docs/getting-started.md", "CHANGELOG.rst", "changelogs/changelog.yaml"]
    assert [n for n in needed if n not in names] == []


def test_ansible_doc_of_every_module_from_the_installed_collection(installed: dict[str, Any]) -> None:
    for name in MODULES:
        doc = run([str(BIN / "ansible-doc"), f"kbfix.windows.{name}"], installed["env"], installed["work"])
        assert doc.returncode == 0, doc.stdout + doc.stderr
        assert str(installed["root"]) in doc.stdout, f"{name} documented from elsewhere: {doc.stdout[:300]}"
        # The modules that reach a host document the controller's Python requirements (their doc fragment);
        # article_list, article_import and fleet_report read only controller files.
        source = (ROOT / "plugins" / "modules" / f"{name}.py").read_text()
        if "kbfix.windows.controller_action.windows_host" in source:
            assert "pywinrm" in doc.stdout and "impacket" in doc.stdout, f"{name}: no requirements"
        else:
            rendered = run([str(BIN / "ansible-doc"), "-j", f"kbfix.windows.{name}"], installed["env"],
                           installed["work"])
            requirements = json.loads(rendered.stdout)[f"kbfix.windows.{name}"]["doc"].get("requirements", [])
            assert not any("0.5" in line and "pywinrm" in line for line in requirements), \
                f"{name} reaches no host but documents the transports' requirements: {requirements}"
    for kind, name in (("callback", "compliance_report"), ("role", "kb828753")):
        doc = run([str(BIN / "ansible-doc"), "-t", kind, f"kbfix.windows.{name}"], installed["env"],
                  installed["work"])
        assert doc.returncode == 0, doc.stdout + doc.stderr


def test_article_import_from_the_installed_collection(installed: dict[str, Any], tmp_path: Path) -> None:
    # Everything the importer needs ships under plugins/: no repository file is read.
    shutil.copy(ROOT / "tests" / "unit" / "importer" / "fixtures" / "kb7100001.html", tmp_path)
    env = {**installed["env"], "ANSIBLE_LOCALHOST_WARNING": "false"}
    proc = run([str(BIN / "ansible"), "localhost", "-e", f"ansible_python_interpreter={sys.executable}",
                "-m", "kbfix.windows.article_import", "-a", "src=kb7100001.html dest=articles"], env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    spec = yaml.safe_load((tmp_path / "articles" / "kb7100001" / "files" / "kb7100001.yml").read_text())
    assert spec["article"]["id"] == "KB7100001" and spec["review"]


def test_audit_playbook_from_the_installed_collection_prints_progress_and_a_summary(
        installed: dict[str, Any], start_fleet: Any, tmp_path: Path) -> None:
    _fleet, inventory = start_fleet([("xp", "xp-sp1-x86"), ("ws", "2008-sp1-x86")])
    (inventory.parent / "group_vars").mkdir(exist_ok=True)
    (inventory.parent / "group_vars" / "all.yml").write_text(yaml.safe_dump(
        {"kb828753_reconnectable_servers": ["fs01"], "kb938475_asynchronous_credits": 256}), encoding="utf-8")
    env = {**installed["env"], "ANSIBLE_CALLBACKS_ENABLED": "kbfix.windows.compliance_report",
           "KBFIX_REPORT_DIR": str(tmp_path / "report")}
    audit = run_playbook(Path("kbfix.windows.audit"), inventory, tmp_path / "run", env=env)
    assert audit.rc == 0, audit.output[-5000:]
    verdicts = {r.host: {v["article"]: v["status"] for v in r.result["verdicts"]}
                for r in audit.results if r.action == "kbfix.windows.kb_article"}
    assert verdicts["xp"]["KB828753"] == "noncompliant" and verdicts["ws"]["KB977381"] == "noncompliant"
    assert (tmp_path / "report" / "kbfix-report.json").exists()
    out = audit.stdout
    # progress: the step per host as it starts, then one line per article with its verdict
    assert "kbfix [xp] Audit every article in one pass ..." in out
    assert re.search(r"^kbfix \[xp\] KB828753 noncompliant: ", out, re.M), out[-3000:]
    assert re.search(r"^kbfix \[ws\] KB828753 not_applicable", out, re.M), out[-3000:]
    # the summary names each noncompliant host and its failing checks (expected and found)
    summary = out.split("KBFIX COMPLIANCE SUMMARY", 1)[1]
    assert re.search(r"^xp: noncompliant$", summary, re.M) and re.search(r"^ws: noncompliant$", summary, re.M)
    assert re.search(r"^  KB828753 noncompliant: .*expected .*found ", summary, re.M), summary
    assert re.search(r"^  KB977381 noncompliant: .*expected .*found ", summary, re.M), summary

    quiet = run_playbook(Path("kbfix.windows.audit"), inventory, tmp_path / "quiet",
                         env={**env, "KBFIX_PROGRESS": "false"})
    assert quiet.rc == 0 and "kbfix [" not in quiet.stdout and "KBFIX COMPLIANCE SUMMARY" not in quiet.stdout


def test_execution_environment_of_the_docs_is_accepted_by_ansible_builder(installed: dict[str, Any]) -> None:
    scale = (ROOT / "docs" / "scale.md").read_text(encoding="utf-8")
    definition = re.search(r"```yaml\n(# execution-environment.yml.*?)```", scale, re.S)
    assert definition, "docs/scale.md has no execution-environment.yml example"
    project = installed["work"] / "ee"
    project.mkdir()
    (project / "execution-environment.yml").write_text(definition.group(1), encoding="utf-8")
    shutil.copy(installed["tarball"], project / installed["tarball"].name)
    created = run([str(BIN / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", "context"],
                  installed["env"], project)
    assert created.returncode == 0, created.stdout + created.stderr
    # Containerfile with podman, Dockerfile with docker (or neither installed, as here)
    build_file = next((project / "context" / n for n in ("Containerfile", "Dockerfile")
                       if (project / "context" / n).exists()), None)
    assert build_file is not None and "ansible-galaxy collection install" in build_file.read_text(encoding="utf-8")
    requirements = yaml.safe_load((project / "context" / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    assert requirements["collections"] == [{"name": f"collections/{installed['tarball'].name}", "type": "file"}]
    assert (project / "context" / "_build" / "collections" / installed["tarball"].name).exists()

    # what the collection adds to the image (ansible-builder runs this inside the build)
    intro = run([str(BIN / "ansible-builder"), "introspect", "--sanitize", str(installed["collections"])],
                installed["env"], project)
    assert intro.returncode == 0, intro.stdout + intro.stderr
    deps = yaml.safe_load(intro.stdout)
    python = " ".join(deps["python"])
    for package in ("pywinrm", "pyspnego", "defusedxml", "impacket", "pywinrm[kerberos,credssp]"):
        assert package in python, deps["python"]
    system = " ".join(deps["system"])
    for package in ("krb5-user [platform:dpkg]", "krb5-workstation [platform:rpm]", "libkrb5-dev", "krb5-devel"):
        assert package in system, deps["system"]
