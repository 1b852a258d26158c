# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place the SMB transport imports impacket, guarded (docs/development.md, "ansible-test sanity").

Every SMB module takes impacket's names from here. Without impacket they are None and ``IMPACKET`` keeps the
``ImportError``: the plugins still import (ansible-doc, the sanity ``import`` test), and ``SMBTransport()``
calls ``IMPACKET.require()`` before any request, which names the pip package to install.
"""

from __future__ import annotations

from typing import Any

from ..requirement import Requirement

__all__ = ["DELETE", "DWORD", "IMPACKET", "NULL", "UCHAR", "BaseInitiateSystemShutdown", "SMBConnection",
           "SessionError", "nmb", "nt_errors", "rpcrt", "rrp", "scmr", "smb", "srvs", "transport"]

try:
    from impacket import nmb, nt_errors, smb
    from impacket.dcerpc.v5 import rpcrt, rrp, scmr, srvs, transport
    from impacket.dcerpc.v5.dtypes import DELETE, DWORD, NULL, UCHAR
    from impacket.dcerpc.v5.ndr import NDRCALL

    # impacket's DCERPC_v5.request looks the reply class (<Request>Response) and the error class up in the
    # module that defines the request: BaseInitiateSystemShutdown below needs DCERPCSessionError here.
    from impacket.dcerpc.v5.rrp import DCERPCSessionError  # noqa: F401  # pylint: disable=unused-import
    from impacket.smbconnection import SessionError, SMBConnection
except ImportError as _error:  # SMBTransport() says what is missing, before any request
    IMPACKET = Requirement.missing("impacket", "SMB", _error)
    nmb = nt_errors = smb = rpcrt = rrp = scmr = srvs = transport = None
    DELETE = DWORD = NULL = UCHAR = NDRCALL = SessionError = SMBConnection = None
    BaseInitiateSystemShutdown: Any = None
else:
    IMPACKET = Requirement.present("impacket", "SMB")

    # Module-level (not built in a function) because impacket finds a request's reply class by name in the
    # request's module; defined only when impacket imported, since they subclass its NDR types.
    class BaseInitiateSystemShutdown(NDRCALL):  # type: ignore[no-redef,misc]
        """MS-RRP 3.1.5.24 (opnum 24); impacket 0.13's rrp module does not define it."""

        opnum = 24
        structure = (
            ("ServerName", rrp.PREGISTRY_SERVER_NAME),
            ("lpMessage", rrp.PRRP_UNICODE_STRING),
            ("dwTimeout", DWORD),
            ("bForceAppsClosed", UCHAR),
            ("bRebootAfterShutdown", UCHAR),
        )

    class BaseInitiateSystemShutdownResponse(NDRCALL):  # type: ignore[misc]
        structure = (("ErrorCode", DWORD),)
