"""The strict tar reader: plain ustar regular files and directories only, every other construct refused.

tarfile is used here only to craft archives, never to extract them.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from mirror.bundle.reader import DirectoryBundle, TarBundle
from mirror.bundle.ustar import BLOCK, Member, header_sum, scan
from mirror.errors import BundleFormatError
from mirror.limits import Limits

HEX = "f" * 64
LAYOUT = b'{"imageLayoutVersion": "1.0.0"}\n'
BLOB = bytes(range(256)) * 4  # 1024 bytes: exactly two blocks, so the next header follows the data directly


def info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, **attrs) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.size, entry.type, entry.mtime = size, kind, 0
    for key, value in attrs.items():
        setattr(entry, key, value)
    return entry


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return info(name, len(data)), data


def special(name: str, kind: bytes, **attrs) -> tuple[tarfile.TarInfo, None]:
    return info(name, 0, kind, **attrs), None


def tar_bytes(members, fmt: int = tarfile.USTAR_FORMAT, **options) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt, **options) as archive:
        for entry, data in members:
            archive.addfile(entry, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def write(tmp_path: Path, raw: bytes) -> Path:
    path = tmp_path / "bundle.tar"
    path.write_bytes(raw)
    return path


def scan_bytes(tmp_path: Path, raw: bytes, max_members: int = 1000) -> list[Member]:
    with open(write(tmp_path, raw), "rb") as handle:
        return scan(handle, max_members=max_members)


def valid_members():
    return [
        regular("oci-layout", LAYOUT),
        (info("blobs/sha256", kind=tarfile.DIRTYPE), None),
        regular(f"blobs/sha256/{HEX}", BLOB),
        regular("index.json", b"{}"),
    ]


def with_checksum(header: bytearray) -> bytearray:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\x00 " % sum(header)
    return header


# --- a valid archive ------------------------------------------------------------------------------------------


def test_scan_lists_members_with_data_offsets(tmp_path):
    assert scan_bytes(tmp_path, tar_bytes(valid_members())) == [
        Member("oci-layout", 512, len(LAYOUT), False),
        Member("blobs/sha256", 1536, 0, True),
        Member(f"blobs/sha256/{HEX}", 2048, len(BLOB), False),
        Member("index.json", 3584, 2, False),
    ]


def test_scan_offsets_point_at_each_members_bytes(tmp_path):
    raw = tar_bytes(valid_members())
    members = scan_bytes(tmp_path, raw)
    assert [raw[m.offset : m.offset + m.size] for m in members] == [LAYOUT, b"", BLOB, b"{}"]


def test_tar_bundle_lists_regular_files_only(tmp_path):
    bundle = TarBundle(write(tmp_path, tar_bytes(valid_members())))
    assert bundle.files() == {"oci-layout": len(LAYOUT), f"blobs/sha256/{HEX}": len(BLOB), "index.json": 2}


def test_tar_bundle_reads_exact_member_bytes(tmp_path):
    bundle = TarBundle(write(tmp_path, tar_bytes(valid_members())))
    with bundle.open(f"blobs/sha256/{HEX}") as handle:
        assert handle.read() == BLOB


def test_tar_bundle_read_stops_at_member_end(tmp_path):
    bundle = TarBundle(write(tmp_path, tar_bytes(valid_members())))
    with bundle.open(f"blobs/sha256/{HEX}") as handle:
        assert (len(handle.read(len(BLOB) + 4096)), handle.read(1)) == (len(BLOB), b"")


def test_tar_bundle_seek_past_member_end_reads_nothing(tmp_path):
    bundle = TarBundle(write(tmp_path, tar_bytes(valid_members())))
    with bundle.open(f"blobs/sha256/{HEX}") as handle:
        handle.seek(len(BLOB) + 100)
        assert handle.read() == b""


def test_tar_bundle_refuses_to_open_an_unlisted_member(tmp_path):
    bundle = TarBundle(write(tmp_path, tar_bytes(valid_members())))
    with pytest.raises(BundleFormatError, match="no member"):
        bundle.open("blobs/sha256")


def test_scan_accepts_exactly_max_members(tmp_path):
    raw = tar_bytes([regular("a", b"1"), regular("b", b"2")])
    assert len(scan_bytes(tmp_path, raw, max_members=2)) == 2


# --- one refusal per attack -----------------------------------------------------------------------------------


def refuse(tmp_path: Path, raw: bytes, match: str, max_members: int = 1000) -> None:
    with pytest.raises(BundleFormatError, match=match) as caught:
        scan_bytes(tmp_path, raw, max_members)
    assert caught.value.exit_code == 3


def test_parent_directory_traversal_is_refused(tmp_path):
    refuse(tmp_path, tar_bytes([regular("../../etc/x", b"x")]), "unsafe member name")


def test_traversal_inside_a_path_is_refused(tmp_path):
    refuse(tmp_path, tar_bytes([regular("blobs/../../x", b"x")]), "unsafe member name")


def test_traversal_in_the_ustar_prefix_field_is_refused(tmp_path):
    raw = tar_bytes([regular("../" * 40 + "x", b"x")])
    assert raw[345:348] == b"../"  # tarfile split the long name into prefix and name
    refuse(tmp_path, raw, "unsafe member name")


def test_absolute_name_is_refused(tmp_path):
    raw = tar_bytes([regular("/tmp/x", b"x")])
    assert raw.startswith(b"/tmp/x\x00")  # tarfile kept the leading slash
    refuse(tmp_path, raw, "unsafe member name")


def test_symlink_is_refused(tmp_path):
    refuse(tmp_path, tar_bytes([special("blobs", tarfile.SYMTYPE, linkname="/")]), "symbolic link")


def test_hardlink_is_refused(tmp_path):
    members = [regular("index.json", b"{}"), special("oci-layout", tarfile.LNKTYPE, linkname="/etc/passwd")]
    refuse(tmp_path, tar_bytes(members), "hard link")


def test_character_device_is_refused(tmp_path):
    refuse(tmp_path, tar_bytes([special("null", tarfile.CHRTYPE, devmajor=1, devminor=3)]), "character device")


def test_block_device_is_refused(tmp_path):
    refuse(tmp_path, tar_bytes([special("sda", tarfile.BLKTYPE, devmajor=8, devminor=0)]), "block device")


def test_fifo_is_refused(tmp_path):
    refuse(tmp_path, tar_bytes([special("pipe", tarfile.FIFOTYPE)]), "FIFO")


def test_pax_long_name_is_refused(tmp_path):
    raw = tar_bytes([regular("blobs/sha256/" + "a" * 120, b"x")], tarfile.PAX_FORMAT)
    refuse(tmp_path, raw, "PAX extended header")


def test_pax_size_override_is_refused(tmp_path):
    entry, data = regular("index.json", b"{}" + b" " * 600)
    entry.pax_headers = {"size": "2"}
    refuse(tmp_path, tar_bytes([(entry, data)], tarfile.PAX_FORMAT), "PAX extended header")


def test_pax_global_header_is_refused(tmp_path):
    raw = tar_bytes([regular("index.json", b"{}")], tarfile.PAX_FORMAT, pax_headers={"comment": "hi"})
    refuse(tmp_path, raw, "PAX global header")


def test_gnu_long_name_is_refused(tmp_path):
    raw = tar_bytes([regular("blobs/sha256/" + "a" * 120, b"x")], tarfile.GNU_FORMAT)
    refuse(tmp_path, raw, "GNU long name|not a POSIX ustar header")


def test_duplicate_member_name_is_refused(tmp_path):
    raw = tar_bytes([regular("index.json", b"{}"), regular("index.json", b'{"evil": 1}')])
    refuse(tmp_path, raw, "appears twice")


def test_bad_header_checksum_is_refused(tmp_path):
    raw = bytearray(tar_bytes([regular("index.json", b"{}")]))
    raw[0:1] = b"j"  # rename without updating the checksum
    refuse(tmp_path, bytes(raw), "checksum")


def test_a_header_checksum_is_the_plain_sum_of_its_bytes_even_at_its_largest():
    # The largest sum a header can have (every byte 0xff), and one of every byte value: the fast sum is exact.
    for block in (b"\xff" * BLOCK, bytes(range(256)) * 2, b"\x00" * BLOCK):
        assert header_sum(block) == sum(block[:148]) + 32 * 8 + sum(block[156:])


def test_truncated_member_is_refused(tmp_path):
    raw = tar_bytes([regular(f"blobs/sha256/{HEX}", BLOB)])
    refuse(tmp_path, raw[: BLOCK + len(BLOB) // 2], "truncated")


def test_missing_end_of_archive_is_refused(tmp_path):
    raw = tar_bytes([regular(f"blobs/sha256/{HEX}", BLOB)])
    refuse(tmp_path, raw[: BLOCK + len(BLOB)], "end-of-archive")


def test_member_hidden_after_the_end_of_archive_marker_is_refused(tmp_path):
    # tar readers stop at the first zero block, but GNU tar --ignore-zeros would go on and see "hidden".
    visible = tar_bytes([regular("index.json", b"{}")])
    hidden = tar_bytes([regular("hidden", b"smuggled")])
    refuse(tmp_path, visible[: 2 * BLOCK] + b"\x00" * BLOCK + hidden, "after its end-of-archive marker")


def test_base256_size_field_is_refused(tmp_path):
    raw = bytearray(tar_bytes([regular("index.json", b"{}")]))
    header = bytearray(raw[:BLOCK])
    header[124:136] = b"\x80" + (2).to_bytes(11, "big")
    raw[:BLOCK] = with_checksum(header)
    refuse(tmp_path, bytes(raw), "base-256")


def test_more_members_than_the_limit_is_refused(tmp_path):
    raw = tar_bytes([regular("a", b"1"), regular("b", b"2"), regular("c", b"3")])
    refuse(tmp_path, raw, "more than 2 members", max_members=2)


def test_tar_bundle_applies_the_member_limit(tmp_path):
    path = write(tmp_path, tar_bytes([regular("a", b"1"), regular("b", b"2"), regular("c", b"3")]))
    with pytest.raises(BundleFormatError, match="more than 2 members"):
        TarBundle(path, Limits(max_bundle_members=2))


def test_tar_bundle_refuses_a_hostile_archive(tmp_path):
    path = write(tmp_path, tar_bytes([special("blobs", tarfile.SYMTYPE, linkname="/")]))
    with pytest.raises(BundleFormatError, match="symbolic link"):
        TarBundle(path)


# --- bundle directories ---------------------------------------------------------------------------------------


def layout_directory(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_bytes(LAYOUT)
    (root / "blobs" / "sha256" / HEX).write_bytes(BLOB)
    return root


def test_directory_bundle_lists_files_recursively(tmp_path):
    bundle = DirectoryBundle(layout_directory(tmp_path))
    assert bundle.files() == {"oci-layout": len(LAYOUT), f"blobs/sha256/{HEX}": len(BLOB)}


def test_directory_bundle_reads_exact_bytes(tmp_path):
    bundle = DirectoryBundle(layout_directory(tmp_path))
    with bundle.open(f"blobs/sha256/{HEX}") as handle:
        assert handle.read() == BLOB


def test_directory_bundle_refuses_a_symlinked_file(tmp_path):
    root = layout_directory(tmp_path)
    (root / "index.json").symlink_to("/etc/hostname")
    with pytest.raises(BundleFormatError, match=r"index\.json") as caught:
        DirectoryBundle(root)
    assert caught.value.exit_code == 3


def test_directory_bundle_refuses_a_symlinked_directory(tmp_path):
    root = layout_directory(tmp_path)
    (root / "blobs" / "sha512").symlink_to("/", target_is_directory=True)
    with pytest.raises(BundleFormatError, match="links are not allowed"):
        DirectoryBundle(root)


def test_directory_bundle_refuses_a_fifo(tmp_path):
    root = layout_directory(tmp_path)
    os.mkfifo(root / "index.json")
    with pytest.raises(BundleFormatError, match="not a regular file"):
        DirectoryBundle(root)


def test_directory_bundle_applies_the_file_limit(tmp_path):
    root = layout_directory(tmp_path)
    (root / "index.json").write_bytes(b"{}")
    with pytest.raises(BundleFormatError, match="more than 2 files"):
        DirectoryBundle(root, Limits(max_bundle_members=2))
