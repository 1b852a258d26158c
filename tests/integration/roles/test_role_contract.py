# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The article roles, their argument specs, the article specs and the playbooks' catalogue must agree.

A variable lives in three places: the article spec (``variables:``), the role's task (which passes
``<role>_<name>`` as ``<name>``) and the role's ``meta/argument_specs.yml`` (documentation and validation);
``kb_article`` reads the same ``<role>_<name>`` for an article named by id, as the fleet playbooks name them
(every known article, ``all``, in ``playbooks/audit.yml`` and ``remediate.yml``). These tests compare them, so
none can drift.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import VERDICT_STATUSES
from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import ArticleSpec, load_spec, load_spec_data

TOP = Path(__file__).resolve().parents[3]
ROLES = TOP / "roles"
ARTICLE_ROLES = sorted(p.name for p in ROLES.glob("kb*") if (p / "tasks" / "main.yml").exists())
SPEC_TYPES = {"str": "str", "int": "int", "bool": "bool", "list": "list"}
COMMON = ("state", "restart", "package_source")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def options(role: str) -> dict[str, Any]:
    entry: dict[str, Any] = load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]
    return entry["options"]


def spec_of(role: str) -> ArticleSpec:
    return load_spec(ROLES / role / "files" / f"{role}.yml")


def include_vars(role: str) -> dict[str, Any]:
    """The vars the role hands to kbfix.windows.article (its only task)."""
    tasks = load(ROLES / role / "tasks" / "main.yml")
    assert len(tasks) == 1, f"{role}: a thin role has one task, the include of kbfix.windows.article"
    task = tasks[0]
    assert task["ansible.builtin.include_role"]["name"] == "kbfix.windows.article"
    return dict(task["vars"])


def article_item(role: str) -> dict[str, Any]:
    items = include_vars(role)["article_list"]
    assert len(items) == 1
    item = items[0]
    return {"spec": item, "variables": {}} if isinstance(item, str) else item


def test_every_role_with_a_spec_is_an_article_role() -> None:
    with_spec = sorted(p.parent.parent.name for p in ROLES.glob("kb*/files/kb*.yml"))
    assert ARTICLE_ROLES == with_spec
    assert len(ARTICLE_ROLES) >= 4


@pytest.mark.parametrize("role", ARTICLE_ROLES)
def test_role_passes_its_own_spec_and_every_declared_variable(role: str) -> None:
    spec = spec_of(role)
    item = article_item(role)
    assert item["spec"] == f"{role}.yml"
    assert spec.id.lower() == role
    declared = {v.name for v in spec.variables}
    passed = item.get("variables") or {}
    assert set(passed) == declared
    for name, expression in passed.items():
        # <name> comes from <role>_<name>, nothing else: one naming rule for roles and playbooks.
        assert re.fullmatch(r"\{\{ " + f"{role}_{name}" + r"( \| default\(none\))? \}\}", expression), expression


@pytest.mark.parametrize("role", ARTICLE_ROLES)
def test_argument_specs_describe_every_variable_as_the_spec_declares_it(role: str) -> None:
    spec, opts = spec_of(role), options(role)
    expected = {f"{role}_{name}" for name in COMMON} | {f"{role}_{v.name}" for v in spec.variables}
    assert set(opts) == expected
    for variable in spec.variables:
        option = opts[f"{role}_{variable.name}"]
        assert option["type"] == SPEC_TYPES[variable.type]
        assert bool(option.get("required", False)) == variable.required, variable.name
        assert option.get("default") == variable.default, variable.name
        if variable.type == "list":
            assert option["elements"] == "str"
    for name, option in opts.items():
        assert option.get("description"), f"{name} has no description"


@pytest.mark.parametrize("role", ARTICLE_ROLES)
def test_defaults_and_task_variables_are_documented(role: str) -> None:
    opts = options(role)
    defaults = load(ROLES / role / "defaults" / "main.yml") or {}
    assert set(defaults) <= set(opts)
    for name, option in opts.items():
        if option.get("required"):
            assert name not in defaults, f"{name} is required and must not get a default"
        elif "default" in option and name in defaults and "{{" not in str(defaults[name]):
            assert defaults[name] == option["default"], name
    used = set(re.findall(rf"\b{role}_\w+", (ROLES / role / "tasks" / "main.yml").read_text(encoding="utf-8")))
    assert used <= set(opts)


@pytest.mark.parametrize("role", ARTICLE_ROLES)
def test_common_options_match_the_article_role(role: str) -> None:
    opts, article = options(role), options("article")
    assert opts[f"{role}_state"]["choices"] == article["article_state"]["choices"]
    assert opts[f"{role}_restart"]["choices"] == article["article_restart"]["choices"]
    assert opts[f"{role}_state"]["default"] == "audited"
    handed = include_vars(role)
    assert {k for k in handed if k != "article_list"} == {f"article_{name}" for name in COMMON}


def test_article_role_choices_match_the_modules() -> None:
    from ansible_collections.kbfix.windows.plugins.action.kb_article import ActionModule as KbArticle
    from ansible_collections.kbfix.windows.plugins.action.reboot import ActionModule as Reboot

    article = options("article")
    assert article["article_state"]["choices"] == KbArticle.ARGUMENT_SPEC["state"]["choices"]
    assert article["article_fail_on"]["choices"] == list(VERDICT_STATUSES)
    assert article["article_reboot_timeout"]["default"] == Reboot.ARGUMENT_SPEC["reboot_timeout"]["default"]


@pytest.mark.parametrize("role", ARTICLE_ROLES)
def test_readme_names_every_variable(role: str) -> None:
    readme = (ROLES / role / "README.md").read_text(encoding="utf-8")
    assert spec_of(role).id in readme
    for name in options(role):
        assert f"`{name}`" in readme, name


def test_the_catalogue_knows_every_article_and_kb_article_reads_the_role_variables() -> None:
    from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import catalogue

    # The fleet playbooks list no ids: they audit every known article.
    for playbook in ("audit.yml", "remediate.yml"):
        assert "vars" not in load(TOP / "playbooks" / playbook)[0], playbook
        assert "kbfix_articles | default(['all'])" in (TOP / "playbooks" / playbook).read_text(), playbook
    assert sorted(catalogue.collection_articles(ROLES)) == sorted(spec_of(role).id for role in ARTICLE_ROLES)
    for role in ARTICLE_ROLES:
        spec = spec_of(role)
        asked: list[str] = []
        request = catalogue.collection_request(ROLES, spec.id, "articles[0]", {}, asked.append)
        # The id finds the role's own spec, and every spec variable is read as the role's variable.
        assert isinstance(request.spec, Path) and load_spec(request.spec).id == spec.id
        assert asked == [f"{role}_{v.name}" for v in spec.variables]
        assert set(options(role)) >= set(asked)


def test_the_fifth_article_walkthrough_is_a_valid_spec_and_role() -> None:
    """docs/writing-articles.md shows a spec and a role task: both must be what the collection accepts."""
    text = (TOP / "docs" / "writing-articles.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    spec = load_spec_data(yaml.safe_load(next(b for b in blocks if "schema: 1" in b)), "docs/writing-articles.md")
    task = yaml.safe_load(next(b for b in blocks if "include_role" in b))[0]
    assert task["ansible.builtin.include_role"]["name"] == "kbfix.windows.article"
    item = task["vars"]["article_list"][0]
    assert item["spec"] == f"{spec.id.lower()}.yml"
    assert set(item["variables"]) == {v.name for v in spec.variables}
    assert set(task["vars"]) == {"article_list"} | {f"article_{name}" for name in COMMON}
