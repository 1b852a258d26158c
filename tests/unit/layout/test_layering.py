"""The library's layers, as docs/architecture.md draws them, checked from the import statements.

- ``article/`` (model, versions, spec, engine) is pure: no transport, no task code, no Ansible, no network.
- ``importer/`` (an article's text -> a spec) is pure as well: it may use ``article/`` (to load what it made)
  and ``errors``, nothing that reaches a host, no task code, no Ansible; no file I/O but what it is handed.
- ``transport/`` reaches hosts; it never imports the task layer or Ansible.
- ``package/`` judges package files on the controller (signatures, hashes, version information): no
  transport, no task code, no Ansible; the task layer calls it before a package is staged.
- ``tasks/`` is the Ansible-facing logic; it reaches hosts only through ``transport.base`` (the interface) and
  ``transport.select`` (the one place that picks an implementation), never a transport's own modules.
- the action plugins import only the task layer (and the shared ``errors``).
- no import cycles between modules.
- retries, polling and waits for a new boot live in ``transport/retry.py`` only: no other module of the
  transport or task layer has a loop that sleeps or asks for a boot time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PU = ROOT / "plugins" / "plugin_utils"
PREFIX = "ansible_collections.kbfix.windows.plugins.plugin_utils"
ACTIONS = tuple(sorted(p.stem for p in (ROOT / "plugins" / "action").glob("*.py") if not p.stem.startswith("_")))


def module_name(path: Path) -> str:
    rel = path.relative_to(PU).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module this file imports, inside functions too, as a dotted name relative to plugin_utils for the
    collection's modules (``tasks.installer``) and as written for the others (``ansible.errors``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
                if target.startswith(PREFIX):
                    target = target[len(PREFIX):].lstrip(".")
                elif not target.startswith("ansible_collections"):
                    found.add(target)
                    continue
            found.add(target)
            # "from . import wmi" imports a module, not a name
            for alias in node.names:
                candidate = f"{target}.{alias.name}" if target else alias.name
                if (PU / Path(*candidate.split("."))).with_suffix(".py").exists():
                    found.add(candidate)
    return found


def library_modules() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PU.rglob("*.py")}


def layer(name: str) -> str:
    return name.split(".", 1)[0]


def test_layout_names_the_layers() -> None:
    packages = sorted(p.name for p in PU.iterdir() if p.is_dir() and not p.name.startswith("__"))
    assert packages == ["article", "importer", "package", "report", "tasks", "transport"]
    assert (PU / "transport" / "base.py").is_file() and (PU / "transport" / "winrm").is_dir()


@pytest.mark.parametrize("name", sorted(n for n in library_modules() if layer(n) == "article"))
def test_article_layer_is_pure(name: str) -> None:
    for imported in library_modules()[name]:
        assert layer(imported) not in ("transport", "tasks", "report"), f"{name} imports {imported}"
        assert not imported.startswith(("ansible", "winrm", "requests", "impacket", "socket")), \
            f"{name} imports {imported}"


@pytest.mark.parametrize("name", sorted(n for n in library_modules() if layer(n) == "package"))
def test_package_layer_is_controller_only(name: str) -> None:
    for imported in library_modules()[name]:
        assert layer(imported) not in ("transport", "tasks", "report"), f"{name} imports {imported}"
        assert not imported.startswith(("ansible", "winrm", "requests", "impacket", "socket", "spnego")), \
            f"{name} imports {imported}"


@pytest.mark.parametrize("name", sorted(n for n in library_modules() if layer(n) == "importer"))
def test_importer_layer_is_pure(name: str) -> None:
    for imported in library_modules()[name]:
        assert layer(imported) not in ("transport", "tasks", "report"), f"{name} imports {imported}"
        assert not imported.startswith(("ansible", "winrm", "requests", "impacket", "socket", "urllib", "http.client",
                                        "subprocess", "os")), f"{name} imports {imported}"


def test_the_importer_is_found() -> None:
    # The parametrised test above is only worth something if it sees the package's modules.
    assert {"importer.build", "importer.document", "importer.html_text"} <= set(library_modules())
    assert "article.spec" in library_modules()["importer.build"]


@pytest.mark.parametrize("name", sorted(n for n in library_modules() if layer(n) == "transport"))
def test_transport_layer_never_imports_tasks_or_ansible(name: str) -> None:
    for imported in library_modules()[name]:
        assert layer(imported) not in ("tasks", "report"), f"{name} imports {imported}"
        assert imported != "ansible" and not imported.startswith("ansible."), f"{name} imports {imported}"


@pytest.mark.parametrize("name", sorted(n for n in library_modules() if layer(n) == "tasks"))
def test_task_layer_reaches_hosts_only_through_the_interface(name: str) -> None:
    for imported in library_modules()[name]:
        if layer(imported) == "transport":
            assert imported in ("transport", "transport.base", "transport.select", "transport.escape",
                                "transport.indicators", "transport.retry"), f"{name} imports {imported}"


@pytest.mark.parametrize("action", ACTIONS)
def test_action_plugins_import_only_the_task_layer(action: str) -> None:
    path = ROOT / "plugins" / "action" / f"{action}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PREFIX):
            inner = node.module[len(PREFIX):].lstrip(".")  # type: ignore[index]
            assert inner == "errors" or layer(inner) == "tasks", f"{action} imports {node.module}"


def test_no_import_cycles() -> None:
    graph = {n: {i for i in deps if i in library_modules()} for n, deps in library_modules().items()}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if nxt == node:
                continue
            if state.get(nxt) == 1:
                cycle.extend([*stack, node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*stack, node]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if state.get(start) is None and visit(start, []):
            break
    assert not cycle, " -> ".join(cycle)


def test_the_checker_sees_a_violation() -> None:
    # The checks above are only worth something if the import reader finds real imports.
    assert "transport.winrm.wmi" in library_modules()["transport.winrm.collect"]
    assert "transport.base" in library_modules()["tasks.installer"]
    assert "article.model" in library_modules()["transport.base"]
    assert "package.authenticode" in library_modules()["package.policy"]
    assert "package.policy" in library_modules()["tasks.installer"]


# What a loop of its own that retries, polls or waits for a restart calls: a pause or the boot time.
WAITING_CALLS = frozenset({"sleep", "_sleep", "boot_time", "last_boot_time"})
RETRY_MODULE = "transport.retry"


def waiting_loops(path: Path) -> list[str]:
    """``function:line`` of each ``for``/``while`` loop in the file whose body calls a pause or a boot time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for loop in ast.walk(function):
            if not isinstance(loop, (ast.For, ast.While, ast.AsyncFor)):
                continue
            for node in ast.walk(loop):
                if isinstance(node, ast.Call):
                    func = node.func
                    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                    if called in WAITING_CALLS:
                        found.append(f"{function.name}:{loop.lineno}")
                        break
    return sorted(set(found))


@pytest.mark.parametrize("name", sorted(n for n in library_modules()
                                        if layer(n) in ("transport", "tasks") and n != RETRY_MODULE))
def test_no_retry_or_boot_wait_loop_outside_the_retry_module(name: str) -> None:
    path = (PU / Path(*name.split("."))).with_suffix(".py")
    if not path.exists():
        path = PU / Path(*name.split(".")) / "__init__.py"
    assert waiting_loops(path) == [], f"{name} waits in a loop of its own: use transport/retry.py"


def test_the_loop_checker_sees_a_waiting_loop(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import time\n"
                      "def wait(t):\n"
                      "    while True:\n"
                      "        if t.boot_time():\n"
                      "            return\n"
                      "        time.sleep(1)\n", encoding="utf-8")
    assert waiting_loops(sample) == ["wait:3"]
    assert waiting_loops(PU / "transport" / "retry.py") != []
