# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets out of every task result the collection returns, whatever produced the text.

A password can reach a message by ways no single check foresees: ansible-core's own option checks quote the
value they refused (a list given for ``ansible_password``), a library's exception quotes its input, an argument
marked ``no_log`` is echoed by a validation message. So the action base passes each result through ``scrub``
once, at the end, with every secret this task knows: the values of ``no_log`` task options, the host's password
variables and the password the connection plugin resolved. A secret given as a list or mapping is redacted
item by item and as Python prints the whole (``['...']``), the two shapes messages quote it in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MASK = "********"
# Every inventory variable ansible-core (and this collection's SMB transport) reads a password from.
PASSWORD_VARIABLES = ("ansible_password", "ansible_pass", "ansible_winrm_password", "ansible_winrm_pass",
                      "ansible_ssh_pass", "ansible_become_password", "ansible_become_pass",
                      "ansible_winrm_cert_key_pem")


def secrets(spec: Mapping[str, Mapping[str, Any]], args: Mapping[str, Any], task_vars: Mapping[str, Any],
            connection: Any = None) -> list[str]:
    """The texts to redact, longest first (so a secret containing another is masked whole)."""
    found: list[Any] = [args.get(name) for name, option in spec.items() if option.get("no_log")]
    found += [task_vars.get(name) for name in PASSWORD_VARIABLES]
    if connection is not None:
        try:
            found.append(connection.get_option("remote_password"))
        except (AttributeError, KeyError):
            pass
    texts = {text for value in found for text in _texts(value) if text}
    return sorted(texts, key=len, reverse=True)


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, Mapping):
        yield str(value)
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, (list, tuple, set)):
        yield str(value)
        yield str(list(value))
        for item in value:
            yield from _texts(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def scrub(result: Any, hidden: list[str]) -> Any:
    """``result`` with every occurrence of each secret replaced by ``MASK`` in every string it holds."""
    if not hidden:
        return result
    if isinstance(result, str):
        for secret in hidden:
            if secret in result:
                result = result.replace(secret, MASK)
        return result
    if isinstance(result, Mapping):
        return {key: scrub(value, hidden) for key, value in result.items()}
    if isinstance(result, list):
        return [scrub(item, hidden) for item in result]
    if isinstance(result, tuple):
        return tuple(scrub(item, hidden) for item in result)
    return result


def host_secrets(host: Any) -> list[str]:
    """The password variables an inventory sets for ``host`` (an ansible ``Host``: its own variables, then its
    groups'), for code that sees a task's result but not its variables (a callback)."""
    sources: list[Mapping[str, Any]] = []
    try:
        sources.append(host.get_vars())
        sources.extend(group.get_vars() for group in host.get_groups())
    except AttributeError:
        return []
    found = {text for variables in sources for name in PASSWORD_VARIABLES for text in _texts(variables.get(name))
             if text}
    return sorted(found, key=len, reverse=True)
