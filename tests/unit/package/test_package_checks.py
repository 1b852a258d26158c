# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The package layer on real files: winsim's signed packages (osslsigncode, winsim's test CA), an MSZIP
cabinet written here, and the inventory settings that configure the checks."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError, MissingRequirementError
from ansible_collections.kbfix.windows.plugins.plugin_utils.package import authenticode, identity, policy
from winsim import packages
from winsim.signing import signing_ca

XP = "WindowsXP-KB828753-x86-ENU.exe"
R2 = "Windows6.1-KB977381-x64.msu"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("signed")
    for name in (XP, R2):
        packages.write_package(name, directory)
    return directory


def trusting() -> policy.PackagePolicy:
    return policy.PackagePolicy(ca_files=(str(signing_ca().ca_file),))


def test_a_genuine_package_passes_with_its_signer_and_identity(signed: Path) -> None:
    check = policy.check_package(str(signed / XP), policy.Expectation("KB828753", "x86", "5.1.2600"), trusting(),
                                 "source")
    assert check.signature is not None and "winsim Test Package Signer (signer)" in check.signature.signer
    assert check.signature.issuer_chain[0].endswith("CN=winsim Test Code Signing Root")
    assert check.identity == identity.PackageIdentity("VERSIONINFO", "828753", "x86", 0x0409,
                                                      "Microsoft Windows XP")
    assert check.to_dict()["signature"] == "verified"


def test_the_package_must_fit_the_host(signed: Path) -> None:
    with pytest.raises(ArgumentError) as caught:
        policy.check_package(str(signed / R2), policy.Expectation("KB977381", "x64", "6.0.6002"), trusting(),
                             "package_source")
    assert caught.value.field == "package_source"
    assert "the host runs Windows 6.0, its -pkgProperties.txt says it applies to Windows Server 2008 R2" in \
        str(caught.value)


def test_microsoft_roots_are_microsoft_s_own() -> None:
    pem = authenticode.microsoft_roots()
    assert pem.count(b"BEGIN CERTIFICATE") >= 5
    bundle = authenticode.trust_bundle([], microsoft=True).read_bytes()
    assert bundle.strip() == pem.strip()


def test_without_osslsigncode_the_error_says_how_to_install_it(signed: Path, monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no osslsigncode on this controller
    with pytest.raises(MissingRequirementError) as caught:
        policy.check_package(str(signed / XP), policy.Expectation("KB828753"), trusting(), "source")
    assert "apt-get install osslsigncode" in str(caught.value)


def _mszip_cabinet(members: list[tuple[str, bytes]]) -> bytes:
    """A one-folder MSZIP cabinet, as makecab writes them (each block: CK + a raw deflate stream)."""
    stream = b"".join(data for _, data in members)
    block = b"CK" + zlib.compress(stream, 9, wbits=-15)
    entries, offset = [], 0
    for name, data in members:
        entries.append(struct.pack("<IIHHHH", len(data), offset, 0, 0, 0, 0x20) + name.encode() + b"\0")
        offset += len(data)
    files_offset = 36 + 8
    data_offset = files_offset + sum(len(e) for e in entries)
    total = data_offset + 8 + len(block)
    header = b"MSCF" + struct.pack("<IIIIIBBHHHHH", 0, total, 0, files_offset, 0, 3, 1, 1, len(members), 0, 1, 0)
    folder = struct.pack("<IHH", data_offset, 1, 1)  # typeCompress 1: MSZIP
    return header + folder + b"".join(entries) + struct.pack("<IHH", 0, len(block), len(stream)) + block


def test_msu_properties_are_read_from_an_mszip_cabinet(tmp_path: Path) -> None:
    props = '\r\n'.join(['Applies to="Windows 7"', 'KB Article Number="2286198"',
                         'Processor Architecture="amd64"']).encode("utf-16")
    path = tmp_path / "Windows6.1-KB2286198-x64.msu"
    path.write_bytes(_mszip_cabinet([("Windows6.1-KB2286198-x64.cab", b"\0" * 5000),
                                     ("Windows6.1-KB2286198-x64-pkgProperties.txt", props)]))
    found = identity.read_identity(str(path))
    assert found == identity.PackageIdentity("pkgProperties", "2286198", "x64", None, "Windows 7")
    expected = policy.Expectation("KB2286198", "x86", "6.1.7601")
    assert policy.identity_problem(path.name, found, expected) == \
        "the host is x86, its -pkgProperties.txt says the package is for x64"


def test_settings_from_the_inventory(tmp_path: Path) -> None:
    ca = signing_ca().ca_file
    lock = {"version": 1, "packages": {XP: {"sha256": "A" * 64}}}
    made = policy.policy_from_settings(str(ca), {R2: "b" * 64}, [XP], lock)
    assert made.ca_files == (str(ca),) and made.may_be_unsigned(XP.upper())
    assert made.pinned(XP) == "a" * 64 and made.pinned(R2) == "b" * 64
    for settings, field in (((str(tmp_path / "none.pem"), None, None), "kbfix_package_trust_ca"),
                            ((None, {XP: "xyz"}, None), f"kbfix_package_sha256.{XP}"),
                            ((None, None, XP), "kbfix_package_unsigned")):
        with pytest.raises(ArgumentError) as caught:
            policy.policy_from_settings(*settings)
        assert caught.value.field == field
    with pytest.raises(ArgumentError) as caught:
        policy.policy_from_settings(None, None, None, {"packages": {}})
    assert caught.value.field == "kbfix_package_lock"


def test_a_spec_package_entry_pins_its_sha256() -> None:
    import yaml

    from ansible_collections.kbfix.windows.plugins.plugin_utils.article.spec import load_spec_data
    from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import SpecError

    roles = Path(__file__).resolve().parents[3] / "roles"
    data = yaml.safe_load((roles / "kb828753/files/kb828753.yml").read_text(encoding="utf-8"))
    data["packages"][0]["sha256"] = "AB" * 32
    spec = load_spec_data(data, "kb828753.yml")
    assert spec.packages[0].sha256 == "ab" * 32
    data["packages"][0]["sha256"] = "ab"
    with pytest.raises(SpecError) as caught:
        load_spec_data(data, "kb828753.yml")
    assert "packages[0].sha256" in str(caught.value) and "64 hexadecimal digits" in str(caught.value)
