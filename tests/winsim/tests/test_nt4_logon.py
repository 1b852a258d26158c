"""The NT 4.0 face's logon check against published vectors and an independent NTLMv2 implementation."""

from __future__ import annotations

import os

from impacket import ntlm

from winsim.nt4face import check_response

# [MS-NLMP] 4.2.1: user "User", domain "Domain", password "Password", server challenge 0123456789abcdef.
CHALLENGE = bytes.fromhex("0123456789abcdef")
NTLMV1 = bytes.fromhex("67c43011f30298a2ad35ece64f16331c44bdbed927841f94")  # 4.2.2.2.1 NTChallengeResponse
LMV2 = bytes.fromhex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")  # 4.2.4.2.1 LMv2 response


def test_ntlmv1_vector() -> None:
    assert check_response(CHALLENGE, "User", "Domain", "Password", b"", NTLMV1)
    assert not check_response(CHALLENGE, "User", "Domain", "password", b"", NTLMV1)
    assert not check_response(bytes(8), "User", "Domain", "Password", b"", NTLMV1)


def test_lmv2_vector() -> None:
    assert check_response(CHALLENGE, "User", "Domain", "Password", LMV2, b"")
    assert check_response(CHALLENGE, "USER", "Domain", "Password", LMV2, b"")  # NTOWFv2 upper-cases the user
    assert not check_response(CHALLENGE, "User", "Other", "Password", LMV2, b"")  # ... but not the domain


def test_ntlmv2_from_impacket() -> None:
    client_challenge = os.urandom(8)
    target = ntlm.AV_PAIRS()
    target[ntlm.NTLMSSP_AV_HOSTNAME] = target[ntlm.NTLMSSP_AV_DNS_HOSTNAME] = "NT4".encode("utf-16le")
    nt_response, lm_response, _ = ntlm.computeResponseNTLMv2(
        0, CHALLENGE, client_challenge, target.getData(), "Domain", "User", "Password", "", "")
    assert len(nt_response) > 24
    assert check_response(CHALLENGE, "User", "Domain", "Password", lm_response, nt_response)
    assert not check_response(CHALLENGE, "User", "Domain", "Passw0rd", lm_response, nt_response)
    assert not check_response(CHALLENGE, "User", "Domain", "Password", b"", b"")
