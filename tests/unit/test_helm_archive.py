"""Chart archives read in memory: the fields a chart carries, and one test per hostile archive.

Every archive is built here with tarfile and gzip; nothing is read from disk.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from mirror.errors import InvalidDocumentError
from mirror.helm.archive import Chart, Dependency, read_chart
from mirror.limits import DEFAULT_LIMITS, Limits, MiB
from mirror.yamlio import YamlBudget, YamlBudgetError

CHART_YAML = "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: 4.5.6\n"


def entry(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, **attrs) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mtime, info.mode = size, kind, 0, 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def tgz(files: dict[str, str | bytes], *, top: str = "demo", extra=(), fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A chart archive: `files` under `top/`, then `extra` (TarInfo, bytes | None) members as given."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=fmt) as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            archive.addfile(entry(f"{top}/{name}", len(data)), io.BytesIO(data))
        for info, data in extra:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def chart(files: dict[str, str | bytes] | None = None, **options) -> bytes:
    return tgz({"Chart.yaml": CHART_YAML, **(files or {})}, **options)


def refused(data: bytes, **options) -> str:
    with pytest.raises(InvalidDocumentError) as caught:
        read_chart(data, where="demo-1.2.3.tgz", **options)
    assert caught.value.exit_code == 3
    return str(caught.value)


class Zeros(io.RawIOBase):
    """`size` zero bytes, produced on demand so a huge member costs no memory to write."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def streamed_tgz(members: Iterator[tuple[tarfile.TarInfo, io.RawIOBase | None]]) -> bytes:
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w|", format=tarfile.PAX_FORMAT) as archive,
    ):
        for info, source in members:
            archive.addfile(info, source)
    return buffer.getvalue()


# What a chart carries.


def test_reads_name_version_app_version_and_api_version():
    read = read_chart(chart(), where="demo.tgz")
    assert (read.name, read.version, read.app_version, read.api_version) == ("demo", "1.2.3", "4.5.6", "v2")


def test_chart_type_defaults_to_application():
    assert read_chart(chart(), where="demo.tgz").chart_type == "application"


def test_library_chart_type_is_read():
    library = tgz({"Chart.yaml": CHART_YAML + "type: library\n"})
    assert read_chart(library, where="demo.tgz").chart_type == "library"


def test_missing_api_version_means_v1():
    legacy = tgz({"Chart.yaml": "name: demo\nversion: 1.0.0\n"})
    assert read_chart(legacy, where="demo.tgz").api_version == "v1"


def test_version_keeps_its_text_where_yaml_would_read_a_float():
    read = read_chart(tgz({"Chart.yaml": "apiVersion: v2\nname: demo\nversion: 1.10\nappVersion: 2.0\n"}), where="x")
    assert (read.version, read.app_version) == ("1.10", "2.0")


def test_chart_path_is_the_chart_name_not_the_directory():
    assert read_chart(chart(top="demo-dir"), where="demo.tgz").path == "demo"


def test_metadata_is_the_chart_yaml_mapping():
    assert read_chart(chart(), where="demo.tgz").metadata["name"] == "demo"


def test_reads_values():
    read = read_chart(chart({"values.yaml": "image:\n  repository: nginx\n  tag: 1.27\n"}), where="demo.tgz")
    assert read.values == {"image": {"repository": "nginx", "tag": 1.27}}


def test_missing_values_are_empty():
    assert read_chart(chart(), where="demo.tgz").values == {}


def test_reads_annotations_as_strings():
    annotated = CHART_YAML + "annotations:\n  artifacthub.io/images: |\n    - name: a\n      image: a:1\n  n: 5\n"
    read = read_chart(tgz({"Chart.yaml": annotated}), where="demo.tgz")
    assert read.annotations == {"artifacthub.io/images": "- name: a\n  image: a:1\n", "n": "5"}


def test_reads_v2_dependencies_from_chart_yaml():
    text = CHART_YAML + (
        "dependencies:\n"
        "- name: mariadb\n  version: 22.x.x\n  repository: oci://registry-1.docker.io/bitnamicharts\n"
        "  condition: mariadb.enabled\n"
        "- name: common\n  version: 2.x.x\n  repository: https://charts.example.com\n  alias: base\n"
    )
    read = read_chart(tgz({"Chart.yaml": text}), where="demo.tgz")
    assert read.dependencies == (
        Dependency("mariadb", "22.x.x", "oci://registry-1.docker.io/bitnamicharts", None, "mariadb.enabled"),
        Dependency("common", "2.x.x", "https://charts.example.com", "base", None),
    )


def test_dependency_without_repository_has_an_empty_repository():
    read = read_chart(tgz({"Chart.yaml": CHART_YAML + "dependencies:\n- name: crds\n  version: 0.0.0\n"}), where="x")
    assert read.dependencies[0].repository == ""


def test_reads_v1_dependencies_from_requirements_yaml():
    files = {
        "Chart.yaml": "apiVersion: v1\nname: demo\nversion: 1.0.0\n",
        "requirements.yaml": "dependencies:\n- name: redis\n  version: ~10.5.7\n  repository: https://charts.example.com\n",
    }
    read = read_chart(tgz(files), where="demo.tgz")
    assert read.dependencies == (Dependency("redis", "~10.5.7", "https://charts.example.com"),)


def test_requirements_yaml_in_a_v2_chart_gives_a_warning():
    files = {"Chart.yaml": CHART_YAML, "requirements.yaml": "dependencies: []\n"}
    assert "apiVersion v2" in read_chart(tgz(files), where="demo.tgz").warnings[0]


def test_reads_chart_lock():
    lock = "dependencies:\n- name: redis\n  version: 10.5.7\n  repository: https://charts.example.com\ndigest: x\n"
    read = read_chart(chart({"Chart.lock": lock}), where="demo.tgz")
    assert read.lock is not None and read.lock["dependencies"][0]["version"] == "10.5.7"


def test_reads_a_vendored_subchart_archive():
    sub = tgz({"Chart.yaml": "apiVersion: v2\nname: redis\nversion: 17.0.0\n", "values.yaml": "a: 1\n"}, top="redis")
    read = read_chart(chart({"charts/redis-17.0.0.tgz": sub}), where="demo.tgz")
    assert [(c.name, c.version, c.values, c.path) for c in read.subcharts] == [
        ("redis", "17.0.0", {"a": 1}, "demo/charts/redis")
    ]


def test_reads_a_vendored_subchart_directory():
    files = {
        "charts/redis/Chart.yaml": "apiVersion: v2\nname: redis\nversion: 17.0.0\n",
        "charts/redis/values.yaml": "a: 1\n",
    }
    read = read_chart(chart(files), where="demo.tgz")
    assert [(c.name, c.values, c.path) for c in read.subcharts] == [("redis", {"a": 1}, "demo/charts/redis")]


def test_reads_subcharts_nested_inside_subcharts():
    inner = tgz({"Chart.yaml": "apiVersion: v2\nname: inner\nversion: 1.0.0\n"}, top="inner")
    files = {
        "charts/middle/Chart.yaml": "apiVersion: v2\nname: middle\nversion: 1.0.0\n",
        "charts/middle/charts/inner-1.0.0.tgz": inner,
    }
    read = read_chart(chart(files), where="demo.tgz")
    assert read.subcharts[0].subcharts[0].path == "demo/charts/middle/charts/inner"


def test_charts_entries_starting_with_underscore_or_dot_are_ignored():
    files = {"charts/_helpers/Chart.yaml": "not: a chart\n", "charts/.hidden.tgz": b"not gzip"}
    assert read_chart(chart(files), where="demo.tgz").subcharts == ()


def test_subchart_directory_without_chart_yaml_is_refused():
    assert "no Chart.yaml" in refused(chart({"charts/redis/values.yaml": "a: 1\n"}))


def test_broken_subchart_archive_is_named_in_the_error():
    assert "charts/redis-1.0.0.tgz" in refused(chart({"charts/redis-1.0.0.tgz": b"not gzip"}))


def test_templates_are_not_kept_in_memory():
    read = read_chart(chart({"templates/deployment.yaml": "kind: Deployment\n"}), where="demo.tgz")
    assert isinstance(read, Chart)


def test_accepts_a_binary_stream():
    assert read_chart(io.BytesIO(chart()), where="demo.tgz").name == "demo"


def test_values_that_do_not_parse_leave_empty_values_and_a_warning():
    read = read_chart(chart({"values.yaml": "image: [unclosed\n"}), where="demo.tgz")
    assert read.values == {}
    assert "values.yaml" in read.warnings[0] and "not valid YAML" in read.warnings[0]


def test_values_that_are_not_a_mapping_leave_a_warning():
    read = read_chart(chart({"values.yaml": "- a\n- b\n"}), where="demo.tgz")
    assert read.values == {} and "not a mapping" in read.warnings[0]


def test_values_with_duplicate_keys_are_read_like_helm_reads_them():
    assert read_chart(chart({"values.yaml": "a: 1\na: 2\n"}), where="demo.tgz").values == {"a": 2}


def test_chart_yaml_that_does_not_parse_is_refused():
    message = refused(tgz({"Chart.yaml": "name: [demo\n"}))
    assert "demo-1.2.3.tgz: Chart.yaml: not valid YAML" in message


def test_chart_yaml_that_is_not_a_mapping_is_refused():
    assert "not a mapping" in refused(tgz({"Chart.yaml": "- demo\n"}))


def test_chart_yaml_without_name_is_refused():
    assert "'name' is required" in refused(tgz({"Chart.yaml": "apiVersion: v2\nversion: 1.0.0\n"}))


def test_chart_yaml_without_version_is_refused():
    assert "'version' is required" in refused(tgz({"Chart.yaml": "apiVersion: v2\nname: demo\n"}))


def test_missing_chart_yaml_is_refused():
    assert "no Chart.yaml" in refused(tgz({"values.yaml": "a: 1\n"}))


def test_non_string_annotation_is_refused():
    assert "annotation" in refused(tgz({"Chart.yaml": CHART_YAML + "annotations:\n  a: [1]\n"}))


def test_dependency_that_is_not_a_mapping_is_refused():
    assert "dependencies[0]" in refused(tgz({"Chart.yaml": CHART_YAML + "dependencies:\n- redis\n"}))


def test_the_defaults_are_helms_limits():
    limits = DEFAULT_LIMITS
    assert (limits.max_chart_content_bytes, limits.max_chart_file_bytes, limits.max_chart_members) == (
        100 * MiB,
        5 * MiB,
        10_000,
    )


# Hostile archives: one test per attack, each refused with exit 3 naming the archive and the member.


def test_refuses_a_member_that_climbs_out_with_dot_dot():
    assert "demo/../x" in refused(chart(extra=[(entry("demo/../x", 1), b"x")]))


def test_refuses_an_absolute_member():
    assert "/etc/x" in refused(chart(extra=[(entry("/etc/x", 1), b"x")]))


def test_refuses_a_windows_drive_member():
    assert "absolute" in refused(chart(extra=[(entry("C:/x", 1), b"x")]))


def test_refuses_a_backslash_in_a_member_name():
    assert "unsafe member name" in refused(chart(extra=[(entry("demo\\..\\x", 1), b"x")]))


def test_refuses_a_dot_part_in_a_member_name():
    assert "'.' parts" in refused(chart(extra=[(entry("demo/./x", 1), b"x")]))


def test_refuses_a_symlink_member():
    message = refused(chart(extra=[(entry("demo/values.yaml", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), None)]))
    assert "symbolic link members are not allowed" in message


def test_refuses_a_hard_link_member():
    message = refused(
        chart(extra=[(entry("demo/values.yaml", kind=tarfile.LNKTYPE, linkname="demo/Chart.yaml"), None)])
    )
    assert "hard link members are not allowed" in message


def test_refuses_a_device_member():
    assert "character device" in refused(chart(extra=[(entry("demo/tty", kind=tarfile.CHRTYPE), None)]))


def test_refuses_a_fifo_member():
    assert "FIFO" in refused(chart(extra=[(entry("demo/pipe", kind=tarfile.FIFOTYPE), None)]))


def test_refuses_two_top_directories():
    assert "second top directory 'other'" in refused(chart(extra=[(entry("other/Chart.yaml", 1), b"x")]))


def test_refuses_a_file_beside_the_top_directory():
    assert "outside the chart's top directory" in refused(chart(extra=[(entry("README.md", 1), b"x")]))


def test_refuses_the_same_file_twice():
    second = CHART_YAML.replace("demo", "evil").encode()
    assert "the same file twice" in refused(chart(extra=[(entry("demo/Chart.yaml", len(second)), second)]))


def test_refuses_a_file_over_five_mib():
    big = 5 * MiB + 1
    data = streamed_tgz(iter([(entry("demo/Chart.yaml", len(CHART_YAML)), io.BytesIO(CHART_YAML.encode())),
                              (entry("demo/values.yaml", big), Zeros(big))]))  # fmt: skip
    assert "demo/values.yaml" in refused(data) and "file limit" in refused(data)


def test_a_file_of_exactly_five_mib_is_accepted():
    data = streamed_tgz(iter([(entry("demo/Chart.yaml", len(CHART_YAML)), io.BytesIO(CHART_YAML.encode())),
                              (entry("demo/templates/big", 5 * MiB), Zeros(5 * MiB))]))  # fmt: skip
    assert read_chart(data, where="demo.tgz").name == "demo"


def test_refuses_a_chart_over_the_total_cap():
    limits = Limits(max_chart_content_bytes=1000)
    assert "more than 1000 bytes" in refused(
        chart({"templates/a": b"a" * 600, "templates/b": b"b" * 600}), limits=limits
    )


def test_nested_archives_share_the_byte_budget():
    sub = tgz({"Chart.yaml": "apiVersion: v2\nname: sub\nversion: 1.0.0\n", "templates/a": b"a" * 700}, top="sub")
    limits = Limits(max_chart_content_bytes=len(sub) + len(CHART_YAML) + 500)
    assert "charts/sub-1.0.0.tgz" in refused(chart({"charts/sub-1.0.0.tgz": sub}), limits=limits)


def test_refuses_subcharts_nested_deeper_than_the_limit():
    files = {
        "charts/a/Chart.yaml": "name: a\nversion: 1.0.0\n",
        "charts/a/charts/b/Chart.yaml": "name: b\nversion: 1.0.0\n",
    }
    assert "nested deeper than 1" in refused(chart(files), limits=Limits(max_subchart_depth=1))


def test_refuses_too_many_members():
    many = [(entry(f"demo/templates/{i}.yaml"), b"") for i in range(30)]
    assert "more than 20 members" in refused(chart(extra=many), limits=Limits(max_chart_members=20))


def test_a_million_empty_members_stop_at_the_member_cap_quickly():
    def members():
        yield entry("demo/Chart.yaml", len(CHART_YAML)), io.BytesIO(CHART_YAML.encode())
        for i in range(20_000):
            yield entry(f"demo/t/{i}"), None

    data = streamed_tgz(members())
    started = time.monotonic()
    assert "more than 10000 members" in refused(data)
    assert time.monotonic() - started < 10


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """200 MiB of zeros in 5 MiB members (each under the file cap), compressed to well under 1 MiB."""

    def members():
        yield entry("demo/Chart.yaml", len(CHART_YAML)), io.BytesIO(CHART_YAML.encode())
        for i in range(40):
            yield entry(f"demo/templates/zero-{i}", 5 * MiB), Zeros(5 * MiB)

    return streamed_tgz(members())


def test_gzip_bomb_is_stopped_by_the_cap_quickly_in_small_memory(gzip_bomb):
    assert len(gzip_bomb) < 1 * MiB
    tracemalloc.start()
    started = time.monotonic()
    try:
        message = refused(gzip_bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "more than 104857600 bytes" in message
    assert time.monotonic() - started < 20
    assert peak < 16 * MiB


def test_gzip_of_zeros_alone_is_not_a_chart():
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1) as zipped:
        for _ in range(200):
            zipped.write(bytes(MiB))
    started = time.monotonic()
    assert "empty archive" in refused(buffer.getvalue())
    assert time.monotonic() - started < 5


def test_refuses_an_oversized_pax_header_before_reading_it():
    header = 50 * MiB

    def members():
        yield entry("demo/Chart.yaml", len(CHART_YAML)), io.BytesIO(CHART_YAML.encode())
        yield entry("demo/././@PaxHeader", header, tarfile.XHDTYPE), Zeros(header)
        yield entry("demo/values.yaml"), None

    tracemalloc.start()
    try:
        message = refused(streamed_tgz(members()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "extended header" in message
    assert peak < 16 * MiB


def test_refuses_an_oversized_pax_header_as_the_first_member():
    def members():
        yield entry("demo/././@PaxHeader", 50 * MiB, tarfile.XHDTYPE), Zeros(50 * MiB)
        yield entry("demo/Chart.yaml"), None

    assert "first tar header: extended header" in refused(streamed_tgz(members()))


def test_refuses_an_oversized_gnu_long_name():
    def members():
        yield entry("demo/Chart.yaml", len(CHART_YAML)), io.BytesIO(CHART_YAML.encode())
        yield entry("././@LongLink", 50 * MiB, tarfile.GNUTYPE_LONGNAME), Zeros(50 * MiB)
        yield entry("demo/values.yaml"), None

    assert "extended header" in refused(streamed_tgz(members()))


def test_long_member_names_in_pax_headers_are_accepted():
    long_name = "templates/" + "d" * 150 + ".yaml"
    assert read_chart(chart({long_name: "kind: x\n"}), where="demo.tgz").name == "demo"


def test_refuses_a_sparse_member():
    sparse = entry("demo/templates/sparse", 0, tarfile.GNUTYPE_SPARSE)
    assert "sparse" in refused(chart(extra=[(sparse, None)], fmt=tarfile.GNU_FORMAT))


def test_refuses_input_that_is_not_gzip():
    assert "not a gzip-compressed chart archive" in refused(b"PK\x03\x04 this is a zip")


def test_refuses_a_plain_tar():
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as archive:
        archive.addfile(entry("demo/Chart.yaml", len(CHART_YAML)), io.BytesIO(CHART_YAML.encode()))
    assert "not a gzip-compressed" in refused(plain.getvalue())


def test_refuses_a_truncated_archive():
    data = chart({"values.yaml": bytes(range(256)) * 400})
    assert "demo-1.2.3.tgz" in refused(data[: len(data) // 2])


def test_refuses_a_compressed_input_over_the_archive_cap():
    assert "larger than 100 bytes" in refused(
        chart({"values.yaml": bytes(range(256)) * 40}), limits=Limits(max_chart_bytes=100)
    )


def test_refuses_an_empty_input():
    assert "demo-1.2.3.tgz" in refused(b"")


# --- YAML within a budget per chart, vendored sub-charts included -------------------------------------------


def alias_bomb(levels: int = 10) -> str:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def budget_refusal(data: bytes, **options) -> str:
    with pytest.raises(YamlBudgetError) as caught:
        read_chart(data, where="chart demo@1.2.3", **options)
    assert caught.value.exit_code == 2
    return caught.value.message


def test_an_alias_bomb_in_values_yaml_is_refused_naming_chart_and_file():
    started = time.monotonic()
    message = budget_refusal(chart({"values.yaml": alias_bomb()}))
    assert time.monotonic() - started < 5
    assert "chart demo@1.2.3" in message and "values.yaml" in message


def test_an_alias_bomb_in_chart_yaml_is_refused():
    assert "Chart.yaml" in budget_refusal(chart({"Chart.yaml": CHART_YAML + alias_bomb()}))


def test_an_alias_bomb_in_a_vendored_subchart_is_refused_naming_it():
    sub = tgz({"Chart.yaml": CHART_YAML.replace("demo", "sub"), "values.yaml": alias_bomb()}, top="sub")
    assert "charts/sub-1.2.3.tgz" in budget_refusal(chart({"charts/sub-1.2.3.tgz": sub}))


def test_the_budget_is_per_chart_so_many_subcharts_cannot_multiply_it():
    values = "image: {repository: acme/app, tag: '1'}\nlist: [" + ", ".join(["x"] * 40) + "]\n"
    files = {
        f"charts/sub{i}-1.2.3.tgz": tgz(
            {"Chart.yaml": CHART_YAML.replace("demo", f"sub{i}"), "values.yaml": values}, top=f"sub{i}"
        )
        for i in range(5)
    }
    read_chart(chart(files), where="chart demo@1.2.3", yaml_budget=YamlBudget(max_nodes=1000, max_depth=20))
    budget_refusal(chart(files), yaml_budget=YamlBudget(max_nodes=200, max_depth=20))
