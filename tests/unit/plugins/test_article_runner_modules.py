# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kb_article and hotfix modules: the argument spec (in the action) and the docs (in the stub) say the
same thing, and ansible-doc renders the docs."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

MODULES = ("kb_article", "hotfix")
DOC_KEYS = ("type", "default", "choices", "required", "elements")


def argument_spec(name: str) -> dict[str, Any]:
    action = importlib.import_module(f"ansible_collections.kbfix.windows.plugins.action.{name}")
    spec: dict[str, Any] = action.ActionModule.ARGUMENT_SPEC
    return spec


def documented_options(name: str) -> dict[str, Any]:
    """The options as users read them: through ansible-doc, with the doc fragments (reboot_timeout) merged."""
    text = ansible_doc("-j", f"kbfix.windows.{name}")
    assert text.returncode == 0, text.stderr
    options: dict[str, Any] = json.loads(text.stdout)[f"kbfix.windows.{name}"]["doc"]["options"]
    return options


def normalised(option: dict[str, Any]) -> dict[str, Any]:
    """The keys both sides state, with Ansible's defaults filled in (str type, not required, no default)."""
    out = {key: option.get(key) for key in DOC_KEYS}
    out["type"] = out["type"] or "str"
    out["required"] = bool(out["required"])
    return out


@pytest.mark.parametrize("name", MODULES)
def test_argument_spec_and_documentation_agree(name: str) -> None:
    spec, docs = argument_spec(name), documented_options(name)
    assert sorted(spec) == sorted(docs), "options differ between the action and the docs stub"
    for option in spec:
        assert normalised(spec[option]) == normalised(docs[option]), f"{name}: option {option} differs"
        assert docs[option].get("description"), f"{name}: option {option} has no description"


@pytest.mark.parametrize("name", MODULES)
def test_stub_has_examples_and_return(name: str) -> None:
    stub = importlib.import_module(f"ansible_collections.kbfix.windows.plugins.modules.{name}")
    examples = yaml.safe_load(stub.EXAMPLES)
    assert any(f"kbfix.windows.{name}" in task for task in examples), "examples use the fully qualified name"
    returned = yaml.safe_load(stub.RETURN)
    assert "msg" in returned and "requests" in returned
    for key, body in returned.items():
        assert body.get("description") and body.get("returned") and body.get("type"), f"{name}: {key}"


def test_kb_article_returns_what_the_report_callback_reads() -> None:
    # plugins/callback/compliance_report.py reads these keys; they are part of the fixed interface.
    returned = yaml.safe_load(importlib.import_module(
        "ansible_collections.kbfix.windows.plugins.modules.kb_article").RETURN)
    for key in ("verdicts", "verdicts_before", "changes", "restart_required", "requests", "article"):
        assert key in returned


def ansible_doc(*args: str) -> subprocess.CompletedProcess[str]:
    program = str(Path(sys.executable).parent / "ansible-doc")
    return subprocess.run([program, *args], capture_output=True, text=True, env=dict(os.environ), timeout=120,
                          check=False)


def test_ansible_doc_renders_both_modules() -> None:
    text = ansible_doc(*(f"kbfix.windows.{m}" for m in MODULES))
    assert text.returncode == 0, text.stderr
    assert "WARNING" not in text.stderr and "ERROR" not in text.stderr, text.stderr
    for name in MODULES:
        assert f"MODULE kbfix.windows.{name}" in text.stdout
    assert "EXAMPLES:" in text.stdout and "RETURN VALUES:" in text.stdout
    data = json.loads(ansible_doc("--json", *(f"kbfix.windows.{m}" for m in MODULES)).stdout)
    for name in MODULES:
        entry = data[f"kbfix.windows.{name}"]
        assert entry["doc"]["options"] and entry["examples"] and entry["return"]
        assert entry["doc"]["has_action"] is True
