# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The model's one OsFacts parse and its typed plan-step details, read back from their JSON form."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from engine_helpers import XP_SP1

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import (
    InstallDetails,
    ManualDetails,
    OsFacts,
    PlanStep,
    RebootDetails,
    RegistryDetails,
    RegistryValue,
    os_facts_from_mapping,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError, SpecError


def test_os_facts_parse_their_version_once() -> None:
    assert (XP_SP1.numbers, XP_SP1.major, XP_SP1.release) == ((5, 1, 2600), 5, (5, 1))
    with pytest.raises(ValueError, match=r"is not a major\.minor"):
        OsFacts("XP", 1, "x86", 1)


@pytest.mark.parametrize("error", [ArgumentError, lambda field, message: SpecError("host.yml", field, message)])
def test_one_mapping_parse_for_every_caller(error: Any) -> None:
    data = {**XP_SP1.to_dict(), "last_boot": "2024-03-01T07:00:00+01:00", "hostname": "ignored"}
    facts = os_facts_from_mapping(data, "kbfix_os", error)
    assert facts == XP_SP1
    assert facts.last_boot == datetime.datetime(2024, 3, 1, 6, 0, tzinfo=datetime.UTC)
    with pytest.raises((ArgumentError, SpecError)) as caught:
        os_facts_from_mapping({**data, "version": "5.1"}, "kbfix_os", error)
    assert caught.value.field == "kbfix_os.version"  # type: ignore[union-attr]


STEPS = [
    PlanStep("install_package", "install", InstallDetails("KB1", "p.exe", "update", ("/quiet",), {0: "success"}, True,
                                                          qfe_migration=("C:\\a.sys",))),
    PlanStep("set_registry", "set", RegistryDetails("HKLM\\X", "V", "binary", b"\x01", RegistryValue("binary", b"\x02"),
                                                    restart=True)),
    PlanStep("manual", "by hand", ManualDetails("why", "what", ("C:\\a.sys",), "/B:SP2QFE")),
    PlanStep("reboot", "restart", RebootDetails("because")),
]


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.action)
def test_plan_steps_read_back_from_their_json_form(step: PlanStep) -> None:
    data = step.to_dict()
    if isinstance(step.details, RegistryDetails):
        data["details"]["data"] = data["details"]["data"].hex()  # what a JSON result carries
        assert PlanStep.from_dict(data).details_as(RegistryDetails).before == RegistryValue("binary", b"\x02")
        return
    assert PlanStep.from_dict(data) == step
    assert step.restart == (step.action == "install_package")


def test_a_step_read_as_the_wrong_kind_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="a reboot step carries RebootDetails, not InstallDetails"):
        STEPS[3].details_as(InstallDetails)
