# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument spec lives once, in each action plugin; the docs-only stub must describe exactly it.

Every module in plugins/modules is covered (also those other engineers add). The documentation is read the way
users see it: through ``ansible-doc -j`` (doc fragments merged), in one process for all modules.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

TOP = Path(__file__).resolve().parents[3]
MODULES = sorted(p.stem for p in (TOP / "plugins" / "modules").glob("*.py") if not p.stem.startswith("_"))
FQCN = "kbfix.windows.{}"


def ansible_doc_command() -> list[str]:
    found = Path(sys.executable).parent / "ansible-doc"
    return [str(found)] if found.exists() else [shutil.which("ansible-doc") or "ansible-doc"]


@cache
def rendered_docs() -> dict[str, Any]:
    """``ansible-doc -j`` for every module at once (one process: ansible-doc costs about a second to start)."""
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(TOP / ".cache" / "collections"))
    proc = subprocess.run([*ansible_doc_command(), "-j", *(FQCN.format(m) for m in MODULES)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    docs: dict[str, Any] = json.loads(proc.stdout)
    return docs


def action_spec(module: str) -> dict[str, Any]:
    action = importlib.import_module(f"ansible_collections.kbfix.windows.plugins.action.{module}")
    spec: dict[str, Any] = action.ActionModule.ARGUMENT_SPEC
    return spec


def normalised(option: dict[str, Any], *, from_docs: bool) -> dict[str, Any]:
    """The facts both sides must agree on, with Ansible's defaults filled in (type str, not required)."""
    nested = option.get("suboptions") if from_docs else option.get("options")
    return {
        "type": option.get("type", "str"),
        "required": bool(option.get("required", False)),
        "default": option.get("default"),
        "choices": list(option["choices"]) if option.get("choices") is not None else None,
        "elements": option.get("elements"),
        "aliases": sorted(option.get("aliases") or []),
        "suboptions": {k: normalised(v, from_docs=from_docs) for k, v in (nested or {}).items()} or None,
    }


def test_there_are_modules() -> None:
    assert {"registry_value", "file_version", "facts", "reboot"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_every_stub_has_an_action_plugin(module: str) -> None:
    assert (TOP / "plugins" / "action" / f"{module}.py").exists(), f"plugins/modules/{module}.py has no action plugin"


@pytest.mark.parametrize("module", MODULES)
def test_documented_options_match_the_argument_spec(module: str) -> None:
    docs = rendered_docs()[FQCN.format(module)]["doc"]
    documented = {name: normalised(opt, from_docs=True) for name, opt in (docs.get("options") or {}).items()}
    spec = {name: normalised(opt, from_docs=False) for name, opt in action_spec(module).items()}
    assert sorted(documented) == sorted(spec), f"{module}: options differ between docs and ARGUMENT_SPEC"
    for name in spec:
        assert documented[name] == spec[name], f"{module}.{name}: docs {documented[name]} != spec {spec[name]}"


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_examples_and_return(module: str) -> None:
    rendered = rendered_docs()[FQCN.format(module)]
    doc = rendered["doc"]
    assert doc["module"] == module
    assert doc.get("short_description") and doc.get("description")
    for name, option in (doc.get("options") or {}).items():
        assert option.get("description"), f"{module}.{name} has no description"
    assert rendered["return"], f"{module} documents no return values"
    examples = yaml.safe_load(rendered["examples"])
    assert examples, f"{module} has no examples"
    text = rendered["examples"]
    assert FQCN.format(module) in text, f"{module}: the examples should use the FQCN"


def test_ansible_doc_text_output_for_every_module() -> None:
    """The plain text view users read (what ``ansible-doc kbfix.windows.<name>`` prints)."""
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(TOP / ".cache" / "collections"))
    proc = subprocess.run([*ansible_doc_command(), *(FQCN.format(m) for m in MODULES)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "[WARNING]" not in proc.stderr, proc.stderr
    for module in MODULES:
        assert f"MODULE {FQCN.format(module)}" in proc.stdout
    assert proc.stdout.count("EXAMPLES:") == len(MODULES)
    assert proc.stdout.count("RETURN VALUES:") == len(MODULES)


SECRET_WORDS = ("password", "secret", "token", "key_pem")


@pytest.mark.parametrize("module", MODULES)
def test_secret_options_are_no_log(module: str) -> None:
    """Module docs cannot carry ``no_log`` (ansible-test's schema refuses it), so the comparison above leaves it
    out; the spec must set it on every option that holds a secret, because the action base redacts exactly the
    ``no_log`` options' values from what the task returns."""
    for name, option in action_spec(module).items():
        secret = any(word in name for word in SECRET_WORDS)
        assert bool(option.get("no_log")) == secret, f"{module}.{name}: no_log should be {secret}"


def test_the_comparison_notices_drift() -> None:
    """The checker itself: a spec that differs from its docs in type, default or choices must not compare equal."""
    doc = {"type": "str", "default": "present", "choices": ["present", "absent"]}
    assert normalised(doc, from_docs=True) == normalised(dict(doc), from_docs=False)
    for change in ({"type": "raw"}, {"default": "absent"}, {"choices": ["present"]}, {"required": True},
                   {"aliases": ["x"]}, {"elements": "str"}):
        assert normalised({**doc, **change}, from_docs=False) != normalised(doc, from_docs=True), change
