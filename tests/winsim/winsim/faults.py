"""WS-Management faults as Windows sends them, and the per-host fault-injection plan.

The codes are the HRESULT-style numbers Windows puts in ``f:WSManFault/@Code`` (decimal, unsigned); the
subcodes are the WS-Management / WS-Addressing / WS-Enumeration fault subcodes Windows pairs them with.
Reason texts follow the wording of Windows' WsmRes messages closely enough for a human to recognise them;
clients must key on the numeric code, never on the text.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ADDRESSING_FAULT = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
WSMAN_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
ENUMERATION_FAULT = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault"

# Windows error numbers (wsmerror.h), decimal as they appear on the wire.
RESOURCE_NOT_FOUND = 2150858752
MESSAGE_INFORMATION_HEADER_REQUIRED = 2150858769
ACTION_NOT_SUPPORTED = 2150858771
FILTER_DIALECT_UNAVAILABLE = 2150858777
CANNOT_PROCESS_FILTER = 2150858778
INVALID_ENUMERATION_CONTEXT = 2150858779
OPERATION_TIMED_OUT = 2150858793
INVALID_PARAMETER = 2150858810
SCHEMA_VALIDATION = 2150858817
RESPONSE_TOO_LARGE = 2150858824
UNEXPECTED_SELECTORS = 2150858843
QUOTA_MAX_SHELLS = 2150859173
QUOTA_MAX_OPERATIONS = 2150859174
ACCESS_DENIED = 5

INVALID_RESOURCE_URI_DETAIL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidResourceURI"


class WsmanFault(Exception):
    """A fault reply: HTTP 500 carrying ``s:Fault`` with a ``f:WSManFault`` detail."""

    def __init__(
        self,
        code: int,
        subcode: str,
        reason: str,
        *,
        sender: bool = True,
        action: str = WSMAN_FAULT,
        provider_fault: bool = False,
        fault_detail: str | None = None,
        provider_message: str | None = None,
        extended_status: Mapping[str, str | None] | None = None,
        wmi_error: bool = False,
    ) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.subcode = subcode  # qualified with a prefix the fault envelope declares (a:, w:, n:)
        self.reason = reason
        self.sender = sender
        self.action = action
        # WMI errors come back wrapped in a ProviderFault naming WsmWmiPl.dll, like Windows does.
        self.provider_fault = provider_fault
        self.fault_detail = fault_detail
        # The provider's own message inside the ProviderFault when it differs from the reason (2008 R2's
        # CannotProcessFilter says "class does not exist" only there), and the __ExtendedStatus WMI adds beside it.
        self.provider_message = provider_message
        self.extended_status = dict(extended_status) if extended_status is not None else None
        # Windows Server 2012 (WinRM 3.0) reports some faults with a bare MSFT_WmiError as the whole detail and
        # the code only in its error_Code, the subcode saying no more than w:InternalError.
        self.wmi_error = wmi_error


def operation_timed_out() -> WsmanFault:
    return WsmanFault(
        OPERATION_TIMED_OUT,
        "w:TimedOut",
        "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
        sender=False,
    )


def quota_operations(limit: int) -> WsmanFault:
    return WsmanFault(
        QUOTA_MAX_OPERATIONS,
        "w:QuotaLimit",
        f"The WS-Management service cannot process the request. This user is allowed a maximum number of {limit} "
        "concurrent operations, which has been exceeded. Close existing operations for this user, or raise the "
        "quota for this user.",
        sender=False,
    )


def quota_operations_wmi_error(limit: int) -> WsmanFault:
    """The operations quota as Windows Server 2012 words it: ``w:InternalError`` with an MSFT_WmiError detail."""
    plain = quota_operations(limit)
    return WsmanFault(plain.code, "w:InternalError", plain.reason, sender=False, wmi_error=True)


def quota_shells(limit: int) -> WsmanFault:
    return WsmanFault(
        QUOTA_MAX_SHELLS,
        "w:QuotaLimit",
        f"The WS-Management service cannot process the request. This user is allowed a maximum number of {limit} "
        "concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user.",
        sender=False,
    )


def cannot_process_filter(detail: str) -> WsmanFault:
    return WsmanFault(
        CANNOT_PROCESS_FILTER,
        "w:CannotProcessFilter",
        f"The WS-Management service cannot process the request because the filter is invalid or not supported: "
        f"{detail}",
        action=ENUMERATION_FAULT,
    )


def class_not_in_namespace(query: str) -> WsmanFault:
    """A WQL query naming a class the namespace lacks, as Windows Server 2008 R2 answers it: the same code and
    reason as a filter it cannot process, the truth only in the WMI provider's fault and ``__ExtendedStatus``."""
    return WsmanFault(
        CANNOT_PROCESS_FILTER,
        "n:CannotProcessFilter",
        "The data source could not process the filter. The filter might be missing or it might be invalid. Change "
        "the filter and try the request again. ",
        action=ENUMERATION_FAULT,
        provider_fault=True,
        provider_message="The specified class does not exist in the given namespace. ",
        extended_status={"Description": None, "Operation": "ExecQuery", "ParameterInfo": query,
                         "ProviderName": "WinMgmt", "StatusCode": None},
    )


def filter_dialect_unavailable(dialect: str) -> WsmanFault:
    return WsmanFault(
        FILTER_DIALECT_UNAVAILABLE,
        "n:FilterDialectRequestedUnavailable",
        f"The WS-Management service does not support the filter dialect {dialect}.",
        action=ENUMERATION_FAULT,
    )


def resource_not_found(message: str | None = None) -> WsmanFault:
    return WsmanFault(
        RESOURCE_NOT_FOUND,
        "a:DestinationUnreachable",
        message
        or "The WS-Management service cannot process the request. The service cannot find the resource identified "
        "by the resource URI and selectors.",
        action=ADDRESSING_FAULT,
        fault_detail=INVALID_RESOURCE_URI_DETAIL,
    )


def shell_not_found(shell_id: str) -> WsmanFault:
    return WsmanFault(
        UNEXPECTED_SELECTORS,
        "w:InvalidSelectors",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found "
        "on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on "
        "the server. Provide the correct ShellId or create a new shell and retry the operation.",
    )


def invalid_selectors(message: str) -> WsmanFault:
    return WsmanFault(UNEXPECTED_SELECTORS, "w:InvalidSelectors", message)


def schema_validation(detail: str) -> WsmanFault:
    return WsmanFault(
        SCHEMA_VALIDATION,
        "w:SchemaValidationError",
        f"The WS-Management service cannot process the request because the XML is invalid: {detail}",
    )


def header_required(name: str) -> WsmanFault:
    return WsmanFault(
        MESSAGE_INFORMATION_HEADER_REQUIRED,
        "a:MessageInformationHeaderRequired",
        f"The WS-Management service cannot process the request. A required header is missing: {name}.",
        action=ADDRESSING_FAULT,
    )


def action_not_supported(action: str) -> WsmanFault:
    return WsmanFault(
        ACTION_NOT_SUPPORTED,
        "a:ActionNotSupported",
        f"The WS-Management service cannot process the request. The resource URI does not support the action "
        f"{action}.",
        action=ADDRESSING_FAULT,
    )


def invalid_enumeration_context() -> WsmanFault:
    return WsmanFault(
        INVALID_ENUMERATION_CONTEXT,
        "n:InvalidEnumerationContext",
        "The WS-Management service cannot process the request because the enumeration context supplied in the "
        "message is not valid. The enumeration may have completed, been released or timed out.",
        sender=False,
        action=ENUMERATION_FAULT,
    )


def response_too_large() -> WsmanFault:
    return WsmanFault(
        RESPONSE_TOO_LARGE,
        "w:EncodingLimit",
        "The WS-Management service cannot process the request because the response exceeds the maximum envelope "
        "size given in the request (MaxEnvelopeSize).",
        sender=False,
    )


def access_denied() -> WsmanFault:
    return WsmanFault(ACCESS_DENIED, "w:AccessDenied", "Access is denied. ")


# The machine half raises WmiError(kind, message); Windows reports the WMI provider's failure wrapped in a
# ProviderFault. Kind -> (code, subcode, action).
_WMI_FAULTS: dict[str, tuple[int, str, str]] = {
    "not_found": (RESOURCE_NOT_FOUND, "a:DestinationUnreachable", ADDRESSING_FAULT),
    "invalid_class": (RESOURCE_NOT_FOUND, "a:DestinationUnreachable", ADDRESSING_FAULT),
    "invalid_method": (ACTION_NOT_SUPPORTED, "a:ActionNotSupported", ADDRESSING_FAULT),
    "invalid_parameter": (INVALID_PARAMETER, "w:InvalidParameter", WSMAN_FAULT),
    "access_denied": (ACCESS_DENIED, "w:AccessDenied", WSMAN_FAULT),
}


def from_wmi_error(kind: str, message: str) -> WsmanFault:
    code, subcode, action = _WMI_FAULTS.get(kind, (INVALID_PARAMETER, "w:InternalError", WSMAN_FAULT))
    detail = INVALID_RESOURCE_URI_DETAIL if code == RESOURCE_NOT_FOUND else None
    return WsmanFault(code, subcode, message, action=action, provider_fault=True, fault_detail=detail)


# --- fault injection ------------------------------------------------------------------------------------


@dataclass
class FaultRule:
    """Fires on ``count`` requests matching ``action`` after letting ``skip`` matching requests through.

    ``action`` is a counter name (``Invoke:SetDWORDValue``), its family (``Invoke``) or None for any request.
    "Reset the 2nd SetDWORDValue after applying it" is ``reset_after={"action": "Invoke:SetDWORDValue",
    "skip": 1}``.

    With ``probability`` the rule fires on each matching request (after ``skip``) with that chance, drawn
    from its own generator seeded with ``seed``, so a campaign replays the same faults on the same requests;
    ``count`` then caps the number of firings and defaults to no cap (None).
    """

    action: str | None = None
    count: int | None = 1
    skip: int = 0
    probability: float | None = None
    seed: int = 0
    _random: random.Random | None = field(default=None, repr=False, compare=False)

    def matches(self, action: str) -> bool:
        if self.action is None:
            return True
        wanted = self.action.lower()
        return action.lower() == wanted or action.split(":", 1)[0].lower() == wanted

    def take(self, action: str) -> bool:
        if (self.count is not None and self.count <= 0) or not self.matches(action):
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        if self.probability is not None:
            if self._random is None:
                self._random = random.Random(self.seed)  # fault injection, not cryptography
            if self._random.random() >= self.probability:
                return False
        if self.count is not None:
            self.count -= 1
        return True

    @classmethod
    def parse(cls, value: object) -> FaultRule:
        if isinstance(value, bool):
            return cls(count=1 if value else 0)
        if isinstance(value, int):
            return cls(count=value)
        if isinstance(value, Mapping):
            unknown = set(value) - {"action", "count", "skip", "probability", "seed"}
            if unknown:
                raise ValueError(f"unknown fault rule keys: {sorted(unknown)}")
            action = value.get("action")
            probability = value.get("probability")
            if probability is not None and not 0.0 <= float(probability) <= 1.0:
                raise ValueError(f"a fault probability is between 0 and 1, not {probability!r}")
            count = value.get("count", None if probability is not None else 1)
            return cls(
                action=None if action is None else str(action),
                count=None if count is None else int(count),
                skip=int(value.get("skip", 0)),
                probability=None if probability is None else float(probability),
                seed=int(value.get("seed", 0)),
            )
        raise ValueError(f"a fault rule is a count or a mapping, not {value!r}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "count": self.count, "skip": self.skip}
        if self.probability is not None:
            out.update(probability=self.probability, seed=self.seed)
        return out


RULE_KINDS = ("reset_before", "reset_after", "http_500", "quota_fault", "quota_wmi_fault", "timeout_fault",
              "corrupt_stdin", "reboot_after")
# Rules that do not answer in place of the service: they act after it (reset_after, reboot_after) or change
# what it does (corrupt_stdin).
NOT_ANSWERS = ("reset_after", "corrupt_stdin", "reboot_after")


@dataclass
class FaultPlan:
    """What a host does wrong on purpose. Replaced as a whole by ``Endpoint.set_faults``."""

    latency_ms: float | None = None
    rules: dict[str, FaultRule] = field(default_factory=dict)
    auth_fail: int = 0  # number of authentications to reject; -1 = all
    reboot_after_requests: int | None = None
    port_closed: bool = False  # NT 4.0 face: its SMB listeners are closed (connections refused) while set

    @classmethod
    def parse(cls, faults: Mapping[str, object]) -> FaultPlan:
        plan = cls()
        for key, value in faults.items():
            if value is None:
                continue
            if key == "latency_ms":
                plan.latency_ms = float(value)  # type: ignore[arg-type]
            elif key in RULE_KINDS:
                plan.rules[key] = FaultRule.parse(value)
            elif key == "auth_fail":
                plan.auth_fail = -1 if value is True else int(value)  # type: ignore[call-overload]
            elif key == "reboot_after_requests":
                plan.reboot_after_requests = int(value)  # type: ignore[call-overload]
            elif key == "port_closed":
                plan.port_closed = bool(value)
            else:
                raise ValueError(f"unknown fault {key!r}; known: latency_ms, auth_fail, reboot_after_requests, "
                                 f"port_closed, {', '.join(RULE_KINDS)}")
        return plan

    def fire(self, action: str) -> set[str]:
        """The rules that fire on this request; each rule counts the request against its own skip/count."""
        return {kind for kind, rule in self.rules.items() if rule.take(action)}

    def take_auth_fail(self) -> bool:
        if self.auth_fail == 0:
            return False
        if self.auth_fail > 0:
            self.auth_fail -= 1
        return True

    def count_request_for_reboot(self) -> bool:
        """True when this request is the one after which the host reboots unexpectedly."""
        if self.reboot_after_requests is None:
            return False
        self.reboot_after_requests -= 1
        if self.reboot_after_requests <= 0:
            self.reboot_after_requests = None
            return True
        return False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {kind: rule.to_json() for kind, rule in self.rules.items()}
        if self.latency_ms is not None:
            out["latency_ms"] = self.latency_ms
        if self.auth_fail:
            out["auth_fail"] = self.auth_fail
        if self.reboot_after_requests is not None:
            out["reboot_after_requests"] = self.reboot_after_requests
        if self.port_closed:
            out["port_closed"] = True
        return out
