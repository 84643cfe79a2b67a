"""Every size, count and time limit is a field of `Limits` (issue 13): no module keeps one of its own.

A module-level upper-case name bound to a number is either a limit (it belongs in mirror/limits.py, where a
reviewer sees every bound and a test can lower it) or a true constant of a format or a tuning of the code,
listed below with the reason it is not a limit.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import mirror
from mirror.limits import DEFAULT_LIMITS, Limits

PACKAGE = Path(mirror.__file__).parent

NOT_LIMITS = {
    "bundle/layout.py:HELD_BYTES": "how much the layout holds in memory before writing at once, a tuning",
    "bundle/reader.py:_MEMBER_BUFFER_BYTES": "buffer size of a .tar member's reader, not a bound",
    "bundle/splitting.py:_CHUNK": "read size of a copy, not a bound",
    "bundle/tarball.py:_CHUNK": "read size of a copy",
    "bundle/tarball.py:_MTIME": "the fixed mtime of reproducible tar members",
    "bundle/ustar.py:BLOCK": "the ustar block size (POSIX)",
    "bundle/volumes.py:_CHUNK": "read size of a copy",
    "collector/cache.py:_CHUNK": "read size of a copy",
    "collector/cache.py:_FICLONE": "an ioctl number (linux/fs.h)",
    "flux/artifact.py:_CHUNK": "read size of a copy",
    "flux/resolve.py:_GIT_NAME_MAX": "Kubernetes' name length (a DNS label)",
    "flux/tags.py:_SAMPLE": "how many examples a message names, not a bound on work",
    "manifest/tagselect.py:_SAMPLE": "how many examples a message names, not a bound on work",
    "git/bundles.py:_HASH_CHUNK": "read size while hashing",
    "httptransport.py:_BUFFER": "read buffer size, not a bound",
    "httptransport.py:_MAX_HEADERS": "http.client's own bound on a response head, kept as the standard library has it",
    "httptransport.py:_MAX_LINE": "http.client's own bound on a head line, kept as the standard library has it",
    "httptransport.py:_POOL_WAIT_S": "how often a thread waiting for a connection checks cancel(), not a bound",
    "httptransport.py:_READ_PIECE": "read size of a body, not a bound",
    "httptransport.py:_SMALL_BODY": "a body this small goes out in one write with its head: a tuning",
    "netguard.py:_SLICE_S": "how often a blocked read wakes to check its pace, not a bound",
    "netguard.py:_WRITE_PIECE": "write size, not a bound",
    "nodeconfig/hosts.py:_MAX_HOST_NAME": "RFC 1123's bound on a host name",
    "nodeconfig/hosts.py:_MAX_PORT": "the largest TCP port",
    "nodeconfig/openshift.py:_MAX_NAME": "Kubernetes' bound on an object name (a DNS-1123 subdomain)",
    "oci/reference.py:_MAX_NAME": "the reference grammar's own bound (distribution: NameTotalLengthMax)",
    "prune/plan.py:_MAX_TARGETS_NAMED": "how many examples a message names, not a bound on work",
    "registry/auth.py:_EXPIRY_MARGIN_S": "a token is renewed this early, a tuning",
    "review/gitlog.py:_CHUNK": "read size of a copy",
    "review/jsonout.py:SCHEMA_VERSION": "a format version",
    "semver.py:_CACHE_SIZE": "memo size, a tuning",
    "semver.py:_UINT64_MAX": "Go's uint64, as Masterminds parses versions",
    "supplychain/cosign.py:_MIN_RSA_BITS": "a cryptographic floor for upstream RSA keys, not a bound on work",
    "trust/journal_schema.py:FORMAT_VERSION": "a format version",
    "trust/lock.py:_POLL_S": "how often a waiter retries flock, not a bound",
    "trust/policy.py:DEFAULT_MAX_SEQUENCE_GAP": "the default of a policy file field, set by the policy's author",
    "trust/statement.py:_MAX_SEQUENCE": "the largest integer JSON carries exactly (2**53 - 1)",
}

_UPPER = re.compile(r"_?[A-Z][A-Z0-9_]*")


def _is_number(node: ast.expr) -> bool:
    """A literal number, or arithmetic over numbers and names (`64 * MiB`, `1 << 20`, `2**53 - 1`)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    if isinstance(node, ast.BinOp):
        return (
            (_is_number(node.left) or isinstance(node.left, ast.Name))
            and (_is_number(node.right) or isinstance(node.right, ast.Name))
            and (_is_number(node.left) or _is_number(node.right))
        )
    if isinstance(node, ast.UnaryOp):
        return _is_number(node.operand)
    return False


def _numeric_constants() -> dict[str, int]:
    found: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module == "limits.py":
            continue
        for statement in ast.parse(path.read_text()).body:
            if isinstance(statement, ast.Assign):
                targets, value = statement.targets, statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                targets, value = [statement.target], statement.value
            else:
                continue
            for target in targets:
                if isinstance(target, ast.Name) and _UPPER.fullmatch(target.id) and _is_number(value):
                    found[f"{module}:{target.id}"] = statement.lineno
    return found


def test_no_module_outside_limits_defines_a_numeric_limit_of_its_own() -> None:
    limits = sorted(name for name in _numeric_constants() if name not in NOT_LIMITS)
    assert limits == [], "make these fields of mirror.limits.Limits, or explain in NOT_LIMITS why they are not limits"


def test_every_allowed_constant_still_exists() -> None:
    assert sorted(set(NOT_LIMITS) - set(_numeric_constants())) == []  # a stale allow-list hides nothing


def test_the_scan_finds_a_limit_written_as_arithmetic() -> None:
    tree = ast.parse("MAX_THINGS = 64 * MiB\n_TIMEOUT_S = 300.0\nNAMES = ('a',)\n")
    assert [_is_number(s.value) for s in tree.body if isinstance(s, ast.Assign)] == [True, True, False]


def test_there_is_one_limits_class_and_the_chart_reader_takes_it() -> None:
    import mirror.helm.archive as archive

    assert not hasattr(archive, "ChartLimits")
    assert archive.read_chart.__kwdefaults__["limits"] is DEFAULT_LIMITS
    assert isinstance(DEFAULT_LIMITS, Limits)
