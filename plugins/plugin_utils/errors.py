# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception hierarchy of kbfix.windows.

Library code raises these; exactly one function (``action_base.result_from_error``) turns them into an
Ansible task result. ``HostUnreachableError`` (and its subclasses) become ``unreachable``, everything
else ``failed``: Ansible reports the two differently, and so must we.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class KbfixError(Exception):
    """Base of every error this collection raises on purpose."""


class ArgumentError(KbfixError):
    """A task argument or role variable is invalid. ``field`` names it (``data``, ``spec.files[3].version``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class SpecError(KbfixError):
    """An article spec is invalid. The text names the file and the field path, like
    ``kb977381.yml: files[3].version: '6.0.6001' is not a four-part version``."""

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source = source
        self.field = field
        self.message = message
        location = f"{source}: {field}" if field else source
        super().__init__(f"{location}: {message}")


class ArticleImportError(SpecError):
    """An article could not become a spec: no article number, no Windows version it names, or the imported
    spec does not load (then ``field`` names the field the loader refused)."""


class TransportError(KbfixError):
    """Talking to the host failed."""


class MissingRequirementError(TransportError):
    """A transport was used on a controller that lacks a Python package it needs. ``package`` is its pip name;
    the text says which interpreter and how to install it (``transport.requirement``)."""

    def __init__(self, package: str, message: str) -> None:
        self.package = package
        super().__init__(message)


class HostUnreachableError(TransportError):
    """The host did not answer: connection refused, reset, DNS failure, connect timeout.

    ``lost`` is true when the same host had answered earlier in this task: it went down under us (a restart,
    a crash) rather than being down from the start, which is what a task may wait for."""

    lost: bool = False


class RebootTimeoutError(HostUnreachableError):
    """The host did not come back (or did not show a new boot time) within the reboot timeout."""


class AuthenticationError(TransportError):
    """The host rejected the credentials (HTTP 401) or the auth handshake failed."""


class CodedError(TransportError):
    """A refusal the host gave with a code: ``code`` (a WSManFault code, a WMI or Win32 error), ``subcode`` and
    ``action`` (the WS-Man fault's subcode and the request's action, when it came as a fault)."""

    def __init__(self, message: str, code: int | None = None, subcode: str | None = None,
                 action: str | None = None) -> None:
        self.code = code
        self.subcode = subcode
        self.action = action
        super().__init__(message)


class AccessDeniedError(CodedError):
    """The host refused the operation for this user, whichever transport carried the answer: a WS-Man fault or
    StdRegProv ReturnValue 5, an SMB status or an RPC's Win32 error 5."""


class WSManFaultError(CodedError):
    """The WinRM service answered with a SOAP fault. ``code`` is the WSManFault code (int) when present."""


class OperationTimeoutError(WSManFaultError):
    """WSManFault 2150858793: the operation timed out on the host (safe to retry a Receive or Pull)."""


class QuotaExceededError(WSManFaultError):
    """WSManFault 2150859174 (operations per user) or 2150859173 (shells per user): back off and retry."""


class NotFoundError(KbfixError):
    """Something the task needs does not exist on the host (a registry key, a file, a package source)."""


class RemoteCommandError(KbfixError):
    """A process run through the cmd shell ended with an exit code the caller did not expect."""

    def __init__(self, message: str, exit_code: int | None = None, stdout: str = "", stderr: str = "") -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(message)


class WriteVerificationError(KbfixError):
    """A value was written but reading it back gave something else."""


class AmbiguousWriteError(HostUnreachableError):
    """Raised by the WinRM client when the connection broke after a non-idempotent request was sent (reset,
    read timeout, TLS EOF, HTTP 5xx without a SOAP fault): the host may or may not have applied it. Callers
    read the state back before deciding to repeat it (never blindly)."""

    def __init__(self, message: str, request_name: str) -> None:
        self.request_name = request_name
        super().__init__(message)


class InstanceNotFoundError(WSManFaultError, NotFoundError):
    """Raised for a SOAP fault saying the host has no instance for the selectors of a Get, or no such resource
    (``a:DestinationUnreachable``, ``w:InvalidSelectors``, WMI 0x80041002; also a cmd shell that no longer
    exists). Both a fault (it came as a SOAP fault) and a ``NotFoundError`` (what it means to the caller)."""


class FilterNotSupportedError(WSManFaultError):
    """Raised when the service rejects ``w:Filter`` (WinRM 1.0 on 2003 R2): enumerate without WQL instead."""


class ClassNotFoundError(WSManFaultError, NotFoundError):
    """Raised when a WQL query names a class the namespace does not have. Windows 2008 R2 says so with the
    same CannotProcessFilter fault (2150858778) it uses for "no filters here"; the message or the WMI error
    (0x80041010) tells them apart. The filter worked: the query, not the host, is at fault."""


class ArticleFault(KbfixError):
    """Raised by ``article_runner`` for an error that belongs to one article (a bad spec or variable, or a
    failure while auditing or enforcing it). ``cause`` is the original error, ``partial`` carries what was
    already done (changes, the verdicts before) so the failed task still reports it."""

    def __init__(self, article: str, cause: KbfixError, partial: Mapping[str, Any] | None = None) -> None:
        self.article = article
        self.cause = cause
        self.partial = dict(partial or {})
        super().__init__(f"{article}: {cause}")
