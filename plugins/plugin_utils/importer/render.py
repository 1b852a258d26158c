# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The imported spec as a YAML file people can review, and the thin role around it.

Sections are written in the order of docs/spec-format.md, file rows and packages one flow mapping each (as the
hand-written specs are), and every inferred value is announced by a ``# (I) ...`` comment above its section
or row group saying why.
"""

from __future__ import annotations

import datetime
import re
import textwrap
from typing import Any

import yaml

from .statements import Statements

_WIDTH = 118


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False, allow_unicode=True)
    return text.strip().removesuffix("...").strip()


def _block(value: Any, indent: int) -> str:
    text = yaml.safe_dump(value, default_flow_style=False, width=_WIDTH, sort_keys=False, allow_unicode=True)
    return textwrap.indent(text, " " * indent)


def _wrapped_flow(item: dict[str, Any], indent: str = "  ") -> str:
    """``- {a: 1, b: 2, ...}`` wrapped at the line width after a comma."""
    inner = [f"{_flow({k: v})[1:-1]}" for k, v in item.items()]
    lines, current = [], f"{indent}- {{"
    for index, part in enumerate(inner):
        piece = part + ("," if index < len(inner) - 1 else "}")
        if len(current) + len(piece) + 1 > _WIDTH and not current.endswith("{"):
            lines.append(current)
            current = indent + "   " + piece
        else:
            current += ("" if current.endswith("{") else " ") + piece
    lines.append(current)
    return "\n".join(lines)


def _comment(text: str, indent: str = "") -> str:
    return "\n".join(textwrap.wrap(text, _WIDTH - len(indent) - 2, initial_indent=f"{indent}# ",
                                   subsequent_indent=f"{indent}#   "))


def _grouped(comments: list[tuple[str, str]], prefix: str) -> list[str]:
    """Inferred-value comments of one section, one line per reason."""
    reasons: dict[str, list[str]] = {}
    for path, reason in comments:
        if path.startswith(prefix):
            reasons.setdefault(reason, []).append(path[len(prefix):].lstrip("."))
    return [f"(I) {', '.join(sorted(set(fields)))[:160]}: {reason}" for reason, fields in reasons.items()]


def render_spec(data: dict[str, Any], comments: list[tuple[str, str]], statements: Statements, shape: str) -> str:
    out = [
        _comment(f"KB{statements.number}: {data['article']['title']}"),
        _comment(f"Imported by kbfix.windows.article_import from the article ({shape.replace('_', ' ')}). "
                 "\"(I)\" marks a value the article does not state (docs/spec-format.md); `review` lists what "
                 "a person must still check."),
        "schema: 1",
        "",
        "article:",
        _block(data["article"], 2).rstrip(),
        "",
    ]
    if "variables" in data:
        out += ["variables:", _block(data["variables"], 2).rstrip(), ""]
    out += ["applicability:"]
    for line in _grouped(comments, "applicability"):
        out.append(_comment(line, "  "))
    for entry in data["applicability"]:
        lead = "  - "
        for key, value in entry.items():
            out.append(f"{lead}{key}: {_flow(value)}")
            lead = "    "
    out += ["", "hotfix:", f"  ids: {_flow(data['hotfix']['ids'])}"]
    if "records" in data["hotfix"]:
        out.append("  records:")
        for line in _grouped(comments, "hotfix.records"):
            out.append(_comment(line, "    "))
        out += [_wrapped_flow(r, "    ") for r in data["hotfix"]["records"]]
    out += ["", "packages:"]
    for line in _grouped(comments, "packages"):
        out.append(_comment(line, "  "))
    out += [_wrapped_flow(p) for p in data["packages"]]
    out += ["", "files:"]
    file_comments = [(k, v) for k, v in comments if k.startswith("files[")]
    current_table = None
    for row in data["files"]:
        if row["table"] != current_table:
            current_table = row["table"]
            out.append(f"  # ---- {current_table}")
            prefix = f"files[{current_table}:"
            reasons: dict[str, set[str]] = {}
            for path, reason in file_comments:
                if path.startswith(prefix):
                    reasons.setdefault(reason, set()).add(path.rsplit(".", 1)[-1])
            for reason, fields in reasons.items():
                out.append(_comment(f"(I) {', '.join(sorted(fields))}: {reason}", "  "))
        out.append(_wrapped_flow(row))
    if "registry" in data:
        out += ["", "registry:"]
        for line in _grouped(comments, "registry"):
            out.append(_comment(line, "  "))
        out.append(_block(data["registry"], 2).rstrip())
    if "review" in data:
        out += ["", "review:", _block(data["review"], 2).rstrip()]
    return "\n".join(out) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """The spec's data with dates as ISO text (a task result is JSON)."""
    return _plain(value)


# ------------------------------------------------------------------------------------------------ the role


def role_files(spec_id: str, data: dict[str, Any]) -> dict[str, str]:
    """The thin role around a spec, as the collection's article roles are: README, defaults, argument specs,
    meta, tasks. Paths relative to the role's directory."""
    article = data["article"]
    title = " ".join(str(article["title"]).split())
    short = re.sub(r"\s+", " ", f"{article['id']} - {title}")[:150]
    variables: dict[str, Any] = data.get("variables", {})
    defaults = [f"{spec_id}_state: audited", f"{spec_id}_restart: if_required",
                f"{spec_id}_package_source: \"{{{{ kbfix_package_source | default('') }}}}\""]
    for name, declared in variables.items():
        if "default" in declared:
            defaults.append(f"{spec_id}_{name}: {_flow(declared['default'])}")
        else:
            defaults.append(f"# {spec_id}_{name}: required, no default (the article leaves it to you)")
    options: dict[str, Any] = {
        f"{spec_id}_state": {
            "description": ["C(audited) reads the host and reports the verdict; C(enforced) installs the package "
                            "and sets the registry values."],
            "type": "str", "choices": ["audited", "enforced"], "default": "audited"},
        f"{spec_id}_restart": {"description": ["Restart policy in enforced state."], "type": "str",
                               "choices": ["never", "if_required", "always"], "default": "if_required"},
        f"{spec_id}_package_source": {"description": ["Where the hotfix package is (controller directory, host "
                                                      "directory or UNC share); defaults to C(kbfix_package_source)."],
                                      "type": "str", "default": ""},
    }
    list_entry: dict[str, Any] = {"spec": f"{spec_id}.yml"}
    for name, declared in variables.items():
        option: dict[str, Any] = {"description": [declared.get("description", name)],
                                  "type": {"int": "int", "bool": "bool", "list": "list"}.get(declared["type"], "str")}
        if option["type"] == "list":
            option["elements"] = "str"
        if declared.get("required") and "default" not in declared:
            option["required"] = True
        elif "default" in declared:
            option["default"] = declared["default"]
        options[f"{spec_id}_{name}"] = option
        list_entry.setdefault("variables", {})[name] = f"{{{{ {spec_id}_{name} }}}}"
    argument_specs = {"argument_specs": {"main": {
        "short_description": f"{short} (audit or enforce)",
        "description": [f"Microsoft {article['id']}: {title}.", "Imported by kbfix.windows.article_import; "
                        "the spec is files/" + spec_id + ".yml."],
        "author": ["kbfix.windows article_import"],
        "options": options}}}
    tasks = [{"name": f"Apply {article['id']} and honour the restart policy",
              "ansible.builtin.include_role": {"name": "kbfix.windows.article"},
              "vars": {"article_list": [list_entry if variables else f"{spec_id}.yml"],
                       "article_state": f"{{{{ {spec_id}_state }}}}",
                       "article_restart": f"{{{{ {spec_id}_restart }}}}",
                       "article_package_source": f"{{{{ {spec_id}_package_source }}}}"}}]
    meta = {"galaxy_info": {"author": "kbfix.windows article_import", "description": short,
                            "license": "GPL-3.0-or-later", "min_ansible_version": "2.19",
                            "platforms": [{"name": "Windows", "versions": ["all"]}]},
            "dependencies": []}
    review = data.get("review", [])
    readme = [f"# {spec_id}", "", f"**{article['id']} — {title}.** {article['summary']}", "",
              f"Imported from the article by `kbfix.windows.article_import`; the spec is `files/{spec_id}.yml`.",
              "Values marked `(I)` there are inferred; check them against the article."]
    if review:
        readme += ["", "## To review before enforcing", ""] + [f"- `{r['field']}`: {r['reason']}" for r in review]
    readme += ["", "## Variables", "", "| Variable | Default |", "|---|---|"]
    readme += [f"| `{name}` | {_flow(opt.get('default', 'required'))} |" for name, opt in options.items()]
    return {
        f"files/{spec_id}.yml": "",  # the spec itself, written by the caller
        "README.md": "\n".join(readme) + "\n",
        "defaults/main.yml": "---\n" + "\n".join(defaults) + "\n",
        "meta/argument_specs.yml": "---\n" + yaml.safe_dump(argument_specs, sort_keys=False, width=_WIDTH),
        "meta/main.yml": "---\n" + yaml.safe_dump(meta, sort_keys=False, width=_WIDTH),
        "tasks/main.yml": "---\n" + yaml.safe_dump(tasks, sort_keys=False, width=_WIDTH),
    }
