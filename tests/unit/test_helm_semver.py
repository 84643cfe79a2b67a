"""Helm's version selection (Masterminds/semver v3 rules): parsing, precedence, constraints, selection.

Most constraint and version cases restate Masterminds/semver's own test tables (constraints_test.go,
version_test.go); the rest pin down corners found while porting, each checked against the Go library.
"""

from __future__ import annotations

import itertools

import pytest
import yaml

from mirror.errors import UsageError
from mirror.semver import Constraint, InvalidConstraint, InvalidVersion, Version, select_version

# --- versions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("1.2.3", "1.2.3", id="plain"),
        pytest.param("v1.2.3", "1.2.3", id="v-prefix"),
        pytest.param("1.0", "1.0.0", id="two-parts"),
        pytest.param("v1.0", "1.0.0", id="v-two-parts"),
        pytest.param("1", "1.0.0", id="one-part"),
        pytest.param("v1", "1.0.0", id="v-one-part"),
        pytest.param("1.2-5", "1.2.0-5", id="two-parts-with-prerelease"),
        pytest.param("v1.2-beta.5", "1.2.0-beta.5", id="v-two-parts-with-prerelease"),
        pytest.param("1.2.0-x.Y.0+metadata", "1.2.0-x.Y.0+metadata", id="prerelease-and-metadata"),
        pytest.param("1.2.0-x.Y.0+metadata-width-hypen", "1.2.0-x.Y.0+metadata-width-hypen", id="hyphen-in-metadata"),
        pytest.param("1.2.3-rc1-with-hypen", "1.2.3-rc1-with-hypen", id="hyphens-in-prerelease"),
        pytest.param("1.2.3-0abc123", "1.2.3-0abc123", id="alnum-prerelease-may-start-with-0"),
        pytest.param("1.2.3+test.01", "1.2.3+test.01", id="metadata-may-have-leading-zeros"),
        pytest.param("1.2.3-alpha.-1", "1.2.3-alpha.-1", id="prerelease-identifier-starting-with-hyphen"),
        pytest.param("0.46.00", "0.46.0", id="leading-zero-patch-coerced-argo-helm"),
        pytest.param("01.1.1", "1.1.1", id="leading-zero-major-coerced"),
        pytest.param("1.01.1", "1.1.1", id="leading-zero-minor-coerced"),
        pytest.param("1.2.2147483648", "1.2.2147483648", id="beyond-int32"),
        pytest.param("18446744073709551615.0.0", "18446744073709551615.0.0", id="uint64-max"),
        pytest.param("20221209-update-renovatejson-v4", "20221209.0.0-update-renovatejson-v4", id="calver-ish"),
        pytest.param("1.2.3-99999999999999999999", "1.2.3-99999999999999999999", id="huge-numeric-prerelease"),
    ],
)
def test_parse_valid_version(text: str, canonical: str) -> None:
    version = Version.parse(text)
    assert str(version) == canonical
    assert version.original == text


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("foo", id="word"),
        pytest.param("1.2.beta", id="word-as-patch"),
        pytest.param("1.2.3.4", id="four-parts"),
        pytest.param("v1.2.3.4", id="v-four-parts"),
        pytest.param("12.3.34.1234", id="four-parts-long"),
        pytest.param("V1.2.3", id="uppercase-v"),
        pytest.param(" 1.2.3", id="leading-space"),
        pytest.param("1.2.3\n", id="trailing-newline"),
        pytest.param("\n1.2", id="leading-newline"),
        pytest.param("1.2.3-alpha.01", id="numeric-prerelease-leading-zero"),
        pytest.param("1.2.3-beta.01", id="numeric-prerelease-leading-zero-2"),
        pytest.param("1.2.3-0123", id="numeric-prerelease-leading-zero-3"),
        pytest.param("1.1.2+.123", id="empty-metadata-identifier"),
        pytest.param("1.0.0-alpha_beta", id="underscore-in-prerelease"),
        pytest.param("1.0.0_beta", id="underscore-separator"),
        pytest.param("1.0.0-alpha..1", id="empty-prerelease-identifier"),
        pytest.param("1.0.0-", id="empty-prerelease"),
        pytest.param("9.8.7+meta+meta", id="two-metadata-parts"),
        pytest.param("1.2.31----RC-SNAPSHOT.12.09.1--.12+788", id="leading-zero-deep-in-prerelease"),
        pytest.param("18446744073709551616.0.0", id="beyond-uint64"),
        pytest.param("1.x", id="wildcard-is-not-a-version"),
        pytest.param("latest", id="tag-name"),
        pytest.param("1.2.3-béta", id="non-ascii"),
        pytest.param("１.2.3", id="fullwidth-digit"),
    ],
)
def test_parse_invalid_version(text: str) -> None:
    with pytest.raises(InvalidVersion):
        Version.parse(text)


def test_version_fields() -> None:
    version = Version.parse("v1.2.3-beta.1+build.123")
    assert (version.major, version.minor, version.patch) == (1, 2, 3)
    assert version.prerelease == ("beta", 1)
    assert version.metadata == "build.123"
    assert version.original == "v1.2.3-beta.1+build.123"
    assert version.is_prerelease
    assert not Version.parse("1.2.3").is_prerelease


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        pytest.param("1.2.3", True, id="plain"),
        pytest.param("1.2.3-beta.1+b.01", True, id="prerelease-and-metadata"),
        pytest.param("1.2.3-alpha.-1", True, id="hyphen-identifier"),
        pytest.param("v1.2.3", False, id="v-prefix"),
        pytest.param("1.2", False, id="two-parts"),
        pytest.param("1", False, id="one-part"),
        pytest.param("01.1.1", False, id="leading-zero-major"),
        pytest.param("1.1.01", False, id="leading-zero-patch"),
        pytest.param("1.2.3-beta.01", False, id="leading-zero-prerelease"),
        pytest.param("20221209-update-renovatejson-v4", False, id="calver-ish"),
    ],
)
def test_parse_strict(text: str, valid: bool) -> None:
    if valid:
        assert str(Version.parse(text, strict=True)) == text
    else:
        with pytest.raises(InvalidVersion):
            Version.parse(text, strict=True)


# Strictly increasing by semver 2.0 precedence: numeric identifiers compare as numbers and sort before
# alphanumeric ones, alphanumerics compare in ASCII order, a longer identifier list wins over its prefix.
ASCENDING = [
    "0.0.0-0",
    "0.0.0-alpha",
    "0.0.0",
    "0.0.1",
    "0.1.0",
    "1.0.0-0",
    "1.0.0-0.1",
    "1.0.0-1",
    "1.0.0-2",
    "1.0.0-10",
    "1.0.0-99999999999999999999",  # too big for 64 bits: compares as text, so after every number
    "1.0.0-ALPHA",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.2.3",
    "1.10.0",
    "2.0.0",
    "10.0.0",
]


def test_precedence_chain() -> None:
    versions = [Version.parse(text) for text in ASCENDING]
    for low, high in itertools.combinations(versions, 2):
        assert low < high and high > low and low <= high and high >= low and low != high, (low, high)
    assert sorted(reversed(versions)) == versions


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param("1.2.3", "1.5.1", -1, id="minor"),
        pytest.param("2.2.3", "1.5.1", 1, id="major"),
        pytest.param("2.2.3", "2.2.2", 1, id="patch"),
        pytest.param("1.3", "1.1.4", 1, id="coerced-minor"),
        pytest.param("3.2-beta", "3.2-beta", 0, id="same-prerelease"),
        pytest.param("4.2", "4.2-beta", 1, id="release-after-prerelease"),
        pytest.param("4.2-alpha", "4.2-beta", -1, id="alpha-before-beta"),
        pytest.param("4.2-beta.2", "4.2-beta.1", 1, id="numeric-identifier"),
        pytest.param("4.2-beta2", "4.2-beta1", 1, id="alnum-identifier"),
        pytest.param("4.2-beta", "4.2-beta.2", -1, id="prefix-is-lower"),
        pytest.param("4.2-beta.foo", "4.2-beta", 1, id="longer-is-higher"),
        pytest.param("1.2+bar", "1.2+baz", 0, id="metadata-ignored"),
        pytest.param("v1.2.3", "1.2.3", 0, id="v-prefix-ignored"),
        pytest.param("0.46.00", "0.46.0", 0, id="leading-zero-ignored"),
        pytest.param("1.0.0-beta.4", "1.0.0-beta.-2", -1, id="number-before-hyphen-word"),
        pytest.param("1.0.0-beta.-2", "1.0.0-beta.-3", -1, id="hyphen-words-as-text"),
        pytest.param("7.43.0-SNAPSHOT.99", "7.43.0-SNAPSHOT.103", -1, id="numbers-not-text"),
        pytest.param("7.43.0-SNAPSHOT.FOO", "7.43.0-SNAPSHOT.103", 1, id="word-after-number"),
        pytest.param("1.0.0-BETA", "1.0.0-alpha", -1, id="ascii-uppercase-first"),
    ],
)
def test_compare(a: str, b: str, expected: int) -> None:
    va, vb = Version.parse(a), Version.parse(b)
    assert (va > vb) - (va < vb) == expected
    assert (va == vb) == (expected == 0)
    if expected == 0:
        assert hash(va) == hash(vb)


# --- constraints ------------------------------------------------------------------------------------------

# (constraint, version, allowed, why)
CONSTRAINT_CASES = [
    # exact and =
    ("=2.0.0", "2.0.0", True, "exact"),
    ("=2.0.0", "1.2.3", False, "exact, other version"),
    ("2.0.0", "2.0.0+build", True, "metadata is ignored"),
    ("v1.2.3", "1.2.3", True, "v-prefixed constraint is coerced"),
    ("1.2.3", "v1.2.3", True, "v-prefixed version is coerced"),
    ("01.02.03", "1.2.3", True, "leading zeros in the constraint are coerced"),
    ("=2.0", "2.0.1", True, "= with a missing patch is a patch range"),
    ("=2.0", "2.1.0", False, "= with a missing patch keeps the minor"),
    ("= 2.0", "1.2.3", False, "space after the operator"),
    ("4.1", "4.1.0", True, "no operator, missing patch"),
    ("2", "2.1.1", True, "no operator, major only is a major range"),
    ("2", "3.4.5", False, "no operator, major only, next major"),
    ("=0", "1.0.0", False, "0 means 0.x"),
    # !=
    ("!=4.1.0", "4.1.0", False, "not equal, same"),
    ("!=4.1.0", "4.1.1", True, "not equal, other patch"),
    ("!=4.1", "4.1.1", False, "!= with a missing patch excludes the whole minor"),
    ("!=4.1", "5.1.0", True, "!= with a missing patch, other major"),
    ("!=4.x", "4.1.0", False, "!= 4.x excludes the whole major"),
    ("!=4.x", "5.1.0", True, "!= 4.x, other major"),
    ("!=4.1-alpha", "4.1.0", True, "!= minor range with a prerelease: a release differs"),
    ("!=4.1-alpha", "4.1.1-alpha", False, "!= minor range with a prerelease: same prerelease is excluded"),
    ("!=4.1.0", "5.1.0-alpha.1", False, "!= does not let prereleases in"),
    # > and >=
    (">1.1", "4.1.0", True, "greater"),
    (">1.1", "1.1.0", False, "greater, equal"),
    (">11.1", "11.1.1", False, ">11.1 needs minor 2 or more"),
    (">11.1", "11.2.1", True, ">11.1, next minor"),
    (">11", "11.1.0", False, ">11 needs major 12 or more"),
    (">0", "1.0.0", True, ">0, next major"),
    (">=1.1", "1.1.0", True, "greater or equal, equal"),
    (">=1.1", "0.0.9", False, "greater or equal, less"),
    (">=11.1", "11.1.2", True, "greater or equal, same minor"),
    ("=>1.2", "1.2.0", True, "=> is an alias of >="),
    (">=1.1", "4.1.0-beta", False, "prerelease excluded without a prerelease comparator"),
    # < and <=
    ("<1.1", "1.1.0", False, "less, equal"),
    ("<1.1", "0.1.0", True, "less"),
    ("<1.x", "0.1.1", True, "<1.x is <1.0.0"),
    ("<1.x", "1.1.1", False, "<1.x excludes 1.*"),
    ("<1.1.x", "1.1.500", False, "<1.1.x is <1.1.0"),
    ("<=1.1", "1.1.1", True, "<=1.1 includes all of 1.1.*"),
    ("<=1.1", "1.2.3", False, "<=1.1, next minor"),
    ("<=11", "11.2.3", True, "<=11 includes all of 11.*"),
    ("<=11", "12.2.3", False, "<=11, next major"),
    ("<=2.x", "3.0.0", False, "<=2.x, next major"),
    ("=<1.2", "1.2.7", True, "=< is an alias of <="),
    ("<=1.1", "0.1.0-alpha", False, "prerelease excluded"),
    ("<=1.1-a", "0.1.0-alpha", True, "a prerelease in the comparator lets prereleases in"),
    # x ranges
    ("*", "4.5.6", True, "any release"),
    ("*", "1.2.3-alpha.1", False, "any release, but not a prerelease"),
    ("*-0", "1.2.3-alpha.1", True, "any, prereleases included"),
    ("x", "0.0.0", True, "x is *"),
    ("X", "3.0.0", True, "X is *"),
    ("1.x", "1.4", True, "1.x, coerced version"),
    ("1.x", "2.0.0", False, "1.x, next major"),
    ("2.*", "2.1.1", True, "2.*"),
    ("2.*", "1.0.0", False, "2.*, previous major"),
    ("1.2.x", "1.2.9", True, "1.2.x"),
    ("1.2.x", "1.3.0", False, "1.2.x is <1.3.0"),
    ("2.1.*", "2.2.1", False, "2.1.*, next minor"),
    ("0.x.x", "1.2.3", False, "0.x.x is <1.0.0"),
    ("0.0.x", "0.0.7", True, "0.0.x"),
    ("0.0.x", "0.1.0", False, "0.0.x is <0.1.0"),
    ("1.x.5", "1.9.0", True, "parts after a wildcard are ignored"),
    # ~ and ~>
    ("~1.2.3", "1.2.4", True, "~1.2.3 is >=1.2.3 <1.3.0"),
    ("~1.2.3", "1.2.2", False, "~1.2.3, below"),
    ("~1.2.3", "1.3.0", False, "~1.2.3, next minor"),
    ("~1.2", "1.2.4", True, "~1.2"),
    ("~1.2", "1.3.4", False, "~1.2, next minor"),
    ("~1", "1.9.4", True, "~1 is <2"),
    ("~1", "2.3.4", False, "~1, next major"),
    ("~1.x", "1.3.5", True, "~1.x is ~1"),
    ("~>1.2.3", "1.2.9", True, "~> is an alias of ~"),
    ("~>1.2.3", "1.3.0", False, "~>, next minor"),
    ("~0.2.3", "0.2.5", True, "~ on 0.x"),
    ("~0.2.3", "0.3.5", False, "~ on 0.x, next minor"),
    ("~*", "2.1.1", True, "~* is anything"),
    ("~0.0.0", "1.2.3", True, "~0.0.0 is anything (Masterminds special case)"),
    ("~1.1", "1.1.1-alpha", False, "~ excludes prereleases"),
    ("~1.2.3-beta.2", "1.2.3-beta.4", True, "~ with a prerelease, later prerelease"),
    ("~1.2.3-beta.2", "1.2.4-beta.2", True, "prereleases of later patches too (unlike npm)"),
    ("~1.2.3-beta.2", "1.3.4-beta.2", False, "~ with a prerelease, next minor"),
    ("~1.1.1-beta", "1.1.1", True, "~ with a prerelease admits the release"),
    ("~1.1.1-beta", "1.1.1-alpha", False, "~ with a prerelease, earlier prerelease"),
    # ^
    ("^1.2.3", "1.8.9", True, "^1.2.3 is <2.0.0"),
    ("^1.2.3", "2.0.0", False, "^1.2.3, next major"),
    ("^1.2.3", "1.2.1", False, "^1.2.3, below"),
    ("^1.2", "1.8.9", True, "^1.2"),
    ("^1", "1.8.9", True, "^1"),
    ("^1", "2.8.9", False, "^1, next major"),
    ("^1.x", "1.1.1", True, "^1.x"),
    ("^1.x", "2.1.1", False, "^1.x, next major"),
    ("^2.x", "1.1.1", False, "^2.x, previous major"),
    ("^0.2.3", "0.2.5", True, "^0.2.3 is <0.3.0"),
    ("^0.2.3", "0.3.0", False, "^0.2.3, next minor"),
    ("^0.2", "0.2.5", True, "^0.2"),
    ("^0.2", "0.5.6", False, "^0.2, later minor"),
    ("^0.0.3", "0.0.3", True, "^0.0.3 is exactly 0.0.3"),
    ("^0.0.3", "0.0.4", False, "^0.0.3 is <0.0.4"),
    ("^0.0", "0.0.3", True, "^0.0 is <0.1.0"),
    ("^0.0", "0.1.4", False, "^0.0, next minor"),
    ("^0", "0.2.3", True, "^0 is <1.0.0"),
    ("^0", "1.1.4", False, "^0, next major"),
    ("^0.0.0", "1.2.3", False, "^0.0.0 is exactly 0.0.0"),
    ("^*", "0.0.0", True, "^* is only 0.0.0 (not 'any', despite Masterminds' comment)"),
    ("^*", "1.2.3", False, "^* rejects 1.2.3"),
    ("^1.2.0", "1.2.3-beta", False, "^ excludes prereleases"),
    ("^1.2.0-alpha.0", "1.2.1-alpha.1", True, "^ with a prerelease admits later prereleases"),
    ("^1.2.0-alpha.2", "1.2.0-alpha.1", False, "^ with a prerelease, earlier prerelease"),
    ("^1.x", "1.1.1-beta1", False, "^1.x excludes prereleases"),
    ("^1.2.x-alpha", "1.1.1-beta1", False, "^1.2.x-alpha, below"),
    ("^0.2.3-beta.2", "0.2.4-beta.2", True, "^0 with a prerelease, next patch prerelease"),
    ("^0.2.3-beta.2", "0.3.4-beta.2", False, "^0 with a prerelease, next minor"),
    # prerelease inclusion
    (">=1.0.0-0", "1.0.0-alpha", True, "-0 is the lowest prerelease"),
    (">=1.0.0-0", "1.5.0", True, "-0 keeps releases"),
    (">=1.0.0-0", "0.9.0-rc.1", False, "-0, below"),
    (">=1.0.0-alpha", "1.0.0-beta", True, "beta after alpha"),
    (">=1.0.0-beta", "1.0.0-alpha", False, "alpha before beta"),
    (">=1.0.0-BETA", "1.0.0-alpha", True, "ASCII order: uppercase before lowercase"),
    (">=0", "0.0.1-alpha", False, ">=0 excludes prereleases"),
    (">=0-0", "0.0.1-alpha", True, ">=0-0 includes prereleases"),
    (">0-0", "0.0.1-alpha", False, ">0-0 is a major range: needs 1.x"),
    (">0.0.0-0", "0.0.0-alpha", True, "alpha is after 0"),
    ("<0-z", "0.0.0-alpha", True, "alpha before z"),
    (">= 1.0.0 <= 2.0.0-beta", "1.0.1-beta", True, "one prerelease comparator opens the whole AND group"),
    (">= 1.0.0 <= 2.0.0-beta", "3.0.0", False, "...which still bounds it"),
    (">= 1.0.0 <= 2.0.0-beta || > 3", "3.0.1-beta", False, "...but not the other || alternative"),
    (">= 1.0.0 <= 2.0.0-beta != 1.0.1-beta || > 3", "1.0.1-beta", False, "!= a prerelease"),
    (">=1.0.0-0 <2.0.0", "2.0.0-rc.1", True, "<2.0.0 admits 2.0.0 prereleases once they are open"),
    # hyphen ranges
    ("1.1 - 2", "1.1.1", True, "hyphen range"),
    ("1.2 - 1.4.5", "1.4.5", True, "hyphen range, upper end included"),
    ("1.2 - 1.4.5", "1.4.6", False, "hyphen range, above"),
    ("1.2 - 1.4.5", "1.1.9", False, "hyphen range, below"),
    ("1.2 - 1.4", "1.4.9", True, "partial right side: <=1.4 covers 1.4.*"),
    ("1.2 - 1", "1.9.0", True, "partial right side: <=1 covers 1.*"),
    ("1.2 - 1", "2.0.0", False, "partial right side, next major"),
    ("1.5.0 - 4.5", "3.7.0", True, "hyphen range, middle"),
    ("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", True, "hyphen range AND a comparison"),
    ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", True, "hyphen range then space"),
    ("1.1-3", "4.3.2", False, "no spaces: 1.1 with prerelease 3, not a range"),
    ("1.1-3", "1.1.5-alpha", True, "no spaces: a prerelease comparator on 1.1"),
    ("1.0.0 - 2.0.0 || 3.0.0 - 3.1.0", "3.0.5", True, "two hyphen ranges"),
    ("2 - 3 4.0.0 - 5.1", "4.5.0", False, "two hyphen ranges side by side are ANDed, not ORed"),
    ("1.0||2 - 3", "1.5.0", True, "without spaces `1.0||2` is the range's low end: >=1.0 || 2 <=3 (Masterminds)"),
    ("1.0 || 2 - 3", "1.5.0", False, "with spaces it is 1.0 || >=2 <=3"),
    # AND and OR
    (">1.1, <2", "1.2.1", True, "comma AND"),
    (">1.1, <2", "1.1.1", False, "comma AND, first fails"),
    (">1.1 <3", "4.3.2", False, "space AND, second fails"),
    (">1.1    <3", "2.3.2", True, "several spaces"),
    ("> 1.1 , <  3", "2.3.2", True, "spaces around operators and comma"),
    (">=1.1, <2, !=1.2.3", "1.2.3", False, "three-way AND"),
    (">=1.1 <2 !=1.2.3 || > 3", "4.1.2", True, "OR, second alternative"),
    (">=1.1 <2 !=1.2.3 || > 3", "3.1.2", False, "OR, neither (>3 needs 4.x)"),
    (">=1.1 <2 !=1.2.3 || >= 3", "3.0.0", True, "OR with >="),
    ("1.x||3.x", "3.2.0", True, "|| without spaces"),
    ("12.3.34 ~1.2.3", "12.3.34", False, "two exact-ish comparisons cannot both hold"),
]


@pytest.mark.parametrize(
    ("constraint", "version", "allowed"),
    [
        pytest.param(c, v, ok, id=f"{c} {'allows' if ok else 'rejects'} {v}: {why}")
        for c, v, ok, why in CONSTRAINT_CASES
    ],
)
def test_constraint(constraint: str, version: str, allowed: bool) -> None:
    assert Constraint.parse(constraint).allows(Version.parse(version)) is allowed


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty: Masterminds rejects it; Helm maps an empty version to *"),
        pytest.param("   ", id="blank"),
        pytest.param("foo", id="word"),
        pytest.param(">= bar", id="word-after-operator"),
        pytest.param("BAR >= 1.2.3", id="word-before"),
        pytest.param(">>1", id="doubled-operator"),
        pytest.param("==1.2.3", id="double-equals"),
        pytest.param("<>1", id="angle-pair"),
        pytest.param("12.3.4.1234", id="four-parts"),
        pytest.param("12.3.34~ 1.2.3", id="no-separator-before-operator"),
        pytest.param("v1.2.3-beta.01", id="leading-zero-prerelease"),
        pytest.param("1.2,", id="trailing-comma"),
        pytest.param("1.2,,1.3", id="double-comma"),
        pytest.param("1.2 ||", id="empty-alternative"),
        pytest.param("|| 1.2", id="leading-empty-alternative"),
        pytest.param("1.2 | 1.3", id="single-bar"),
        pytest.param("1.2 -1.4", id="hyphen-without-space-after"),
        pytest.param(">1.0 1.2 - 1.4", id="hyphen-range-after-a-space-eats-the-separator (Masterminds)"),
        pytest.param("1x", id="digit-and-x"),
        pytest.param("1.2.3 ^", id="dangling-operator"),
        pytest.param("V1.2.3", id="uppercase-v"),
        pytest.param("1.2.3\u00a01.2.4", id="non-ascii-space"),
        pytest.param("18446744073709551616", id="beyond-uint64"),
        pytest.param("latest", id="tag-name"),
    ],
)
def test_invalid_constraint(text: str) -> None:
    with pytest.raises(InvalidConstraint) as raised:
        Constraint.parse(text)
    assert isinstance(raised.value, UsageError) and raised.value.exit_code == 2
    assert f'"{text}"' in str(raised.value)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        pytest.param("*", "*", id="star"),
        pytest.param(">= 1.2.3", ">=1.2.3", id="space-after-operator-dropped"),
        pytest.param("1.2", "1.2", id="operand-as-written"),
        pytest.param("> 1 , <=1.2.3", ">1 <=1.2.3", id="comma-becomes-space"),
        pytest.param("2.x,   >=1.2.3 || >4.5.6, < 5.7", "2.x >=1.2.3 || >4.5.6 <5.7", id="or-groups"),
        pytest.param("1.2 - 1.4.5", ">=1.2 <=1.4.5", id="hyphen-range-rewritten"),
        pytest.param("2 - 3 4.0.0 - 5.1", ">=2 <=3 >=4.0.0 <=5.1", id="two-hyphen-ranges"),
        pytest.param("2 - 3, 2 - 3", ">=2 <=3 >=2 <=3", id="two-hyphen-ranges-comma"),
        pytest.param(">=1.0, 1.2 - 1.4", ">=1.0 >=1.2 <=1.4", id="hyphen-range-after-comma"),
        pytest.param("1.0||2 - 3", ">=1.0 || 2 <=3", id="bar-is-a-version-character-in-ranges"),
        pytest.param("~>v1.2", "~>v1.2", id="aliases-and-v-kept"),
    ],
)
def test_constraint_str(text: str, normalised: str) -> None:
    parsed = Constraint.parse(text)
    assert str(parsed) == normalised
    assert parsed.text == text
    assert str(Constraint.parse(str(parsed))) == normalised


# --- properties over a fixed grid -------------------------------------------------------------------------

GRID = [
    Version.parse(text)
    for text in [
        *ASCENDING,
        "0.0.3",
        "0.0.4",
        "0.2.3",
        "0.2.9",
        "0.3.0",
        "1.1.0",
        "1.2.0",
        "1.2.4",
        "1.2.9",
        "1.3.0",
        "1.4.5",
        "1.4.6",
        "1.9.9",
        "1.2.3-beta",
        "1.2.4-rc.1",
        "2.0.0-rc.1",
        "2.1.0",
        "3.0.0",
    ]
]
CONSTRAINTS = [
    "*", "1.x", "1.2.x", "~1.2.3", "^1.2.3", "^0.2.3", "^0.0.3", ">=1.0.0", "<2.0.0", "!=1.2.3", ">1.2",
    "<=1.4", "1.2 - 1.4.5", "^0", "~1", "0.x || 2.x", "=1.2.3",
]  # fmt: skip


def allowed(constraint: str) -> set[Version]:
    parsed = Constraint.parse(constraint)
    return {v for v in GRID if parsed.allows(v)}


AND_CONSTRAINTS = [c for c in CONSTRAINTS if "||" not in c]


@pytest.mark.parametrize(("first", "second"), list(itertools.product(AND_CONSTRAINTS[:9], AND_CONSTRAINTS)))
def test_and_without_prerelease_only_narrows(first: str, second: str) -> None:
    both = allowed(f"{first}, {second}")
    assert both == allowed(first) & allowed(second)
    if " - " in second:
        # Masterminds' range rewrite swallows the space before `1.2 - 1.4.5`: only a comma separates it.
        with pytest.raises(InvalidConstraint):
            Constraint.parse(f"{first} {second}")
    else:
        assert allowed(f"{first} {second}") == both


def test_and_with_a_prerelease_can_widen() -> None:
    # Masterminds decides prereleases per AND group: adding a comparison that names one opens the group.
    candidate = Version.parse("1.5.0-rc.1")
    assert not Constraint.parse(">=1.0.0").allows(candidate)
    assert Constraint.parse(">=1.0.0 <=9.0.0-0").allows(candidate)


@pytest.mark.parametrize(("first", "second"), list(itertools.combinations(CONSTRAINTS, 2)))
def test_or_is_union(first: str, second: str) -> None:
    assert allowed(f"{first} || {second}") == allowed(first) | allowed(second)


@pytest.mark.parametrize(
    ("shorthand", "spelled_out"),
    [
        pytest.param("1.2.x", ">=1.2.0 <1.3.0", id="patch-wildcard"),
        pytest.param("1.2", ">=1.2.0 <1.3.0", id="missing-patch"),
        pytest.param("1.x", ">=1.0.0 <2.0.0", id="minor-wildcard"),
        pytest.param("*", ">=0.0.0", id="star"),
        pytest.param("~1.2.3", ">=1.2.3 <1.3.0", id="tilde"),
        pytest.param("~1", ">=1.0.0 <2.0.0", id="tilde-major"),
        pytest.param("^1.2.3", ">=1.2.3 <2.0.0", id="caret"),
        pytest.param("^0.2.3", ">=0.2.3 <0.3.0", id="caret-zero-major"),
        pytest.param("^0.0.3", ">=0.0.3 <0.0.4", id="caret-zero-minor"),
        pytest.param("^0", ">=0.0.0 <1.0.0", id="caret-zero"),
        pytest.param("1.2 - 1.4.5", ">=1.2.0 <=1.4.5", id="hyphen"),
        pytest.param("1.2 - 1.4", ">=1.2.0 <1.5.0", id="hyphen-partial-right"),
        pytest.param(">1.2", ">=1.3.0", id="greater-partial"),
        pytest.param("<=1.4", "<1.5.0", id="less-equal-partial"),
    ],
)
def test_shorthand_equivalence(shorthand: str, spelled_out: str) -> None:
    assert allowed(shorthand) == allowed(spelled_out)


@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_normalised_form_is_equivalent(constraint: str) -> None:
    assert allowed(str(Constraint.parse(constraint))) == allowed(constraint)


@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_select_is_newest_allowed_whatever_the_order(constraint: str) -> None:
    texts = [v.original for v in GRID]
    expected = max(allowed(constraint), default=None)
    for order in (texts, texts[::-1], sorted(texts)):
        chosen = select_version(order, constraint)
        assert (None if chosen is None else Version.parse(chosen)) == expected


def test_version_round_trip() -> None:
    for v in GRID:
        assert Version.parse(str(v)) == v


# --- select_version ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("versions", "constraint", "expected"),
    [
        pytest.param(["1.0.0", "1.2.0", "1.1.0"], "*", "1.2.0", id="newest-wins-in-any-order"),
        pytest.param(["1.0.0", "1.1.0-rc.1"], "*", "1.0.0", id="prerelease-excluded"),
        pytest.param(["1.0.0", "1.1.0-rc.1"], "", "1.0.0", id="empty-means-newest-release"),
        pytest.param(["1.0.0", "1.1.0-rc.1"], ">=1.0.0-0", "1.1.0-rc.1", id="prerelease-opted-in"),
        pytest.param(["1.1.0-rc.1", "1.2.0-rc.1"], "1.1.0-rc.1", "1.1.0-rc.1", id="exact-prerelease"),
        pytest.param(["1.2.3", "v1.2.3"], "v1.2.3", "v1.2.3", id="exact-string-wins-over-equal-version"),
        pytest.param(["v1.2.3", "1.2.3"], "1.2.3", "1.2.3", id="exact-string-wins-whatever-the-order"),
        pytest.param(["v1.2.3", "1.3.0"], "1.2.3", "v1.2.3", id="equal-precedence-without-exact-string"),
        pytest.param(["0.1.2", "0.1.1", "0.1"], "0.1", "0.1", id="exact-string-beats-the-range-it-spells"),
        pytest.param(["0.1.2", "0.1.1", "0.1"], "0.1.x", "0.1.2", id="range-without-exact-string"),
        pytest.param(
            ["0.1.9+alpha", "0.1.9+beta", "0.1.8", "0.1.8+beta"],
            "0.1.9",
            "0.1.9+alpha",
            id="helm-setter-first-of-equals",
        ),
        pytest.param(["0.1.9+alpha", "0.1.8", "0.1.8+beta"], "0.1.8", "0.1.8", id="helm-setter-exact"),
        pytest.param(["2.0.0", "2.0.0", "1.0.0"], "*", "2.0.0", id="duplicates"),
        pytest.param(["latest", "1.0.0_beta", "2.x", "1.0.0"], "*", "1.0.0", id="unparsable-skipped"),
        pytest.param(["latest", "1.0.0"], "latest", None, id="tag-name-is-an-invalid-constraint"),
        pytest.param(["1.0.0", "2.0.0"], "3.x", None, id="nothing-satisfies"),
        pytest.param([], "*", None, id="no-versions"),
        pytest.param(["1.0.0", "1.9.9", "2.0.0-rc.1"], "^1.0.0", "1.9.9", id="caret"),
        pytest.param(["0.2.3", "0.2.9", "0.3.0"], "^0.2.3", "0.2.9", id="caret-zero"),
        pytest.param(["1.0.0", "1.0.1", "1.1.0"], "~1.0", "1.0.1", id="tilde"),
        pytest.param(["1.0.0", "2.0.0", "3.0.0"], "1.x || 3.x", "3.0.0", id="or"),
    ],
)
def test_select_version(versions: list[str], constraint: str, expected: str | None) -> None:
    if constraint == "latest":
        with pytest.raises(InvalidConstraint):
            select_version(versions, constraint)
        return
    assert select_version(versions, constraint) == expected


def test_select_version_strict_reads_like_oci_tags() -> None:
    tags = ["v2.0.0", "1.5", "1.2.3", "1.2.4+build.1"]
    assert select_version(tags, "*") == "v2.0.0"
    assert select_version(tags, "*", strict=True) == "1.2.4+build.1"
    assert select_version(tags, "v2.0.0", strict=True) is None


def test_select_version_invalid_constraint_raises_even_with_versions() -> None:
    with pytest.raises(InvalidConstraint, match=r'"1\.0\.0_beta"'):
        select_version(["1.0.0_beta"], "1.0.0_beta")


def test_overlong_constraint_is_refused() -> None:
    text = ", ".join([">=1.0.0"] * 200)
    with pytest.raises(InvalidConstraint, match="longer than"):
        Constraint.parse(text)
    assert Constraint.parse(", ".join([">=1.0.0"] * 100)).allows(Version.parse("1.0.0"))  # 898 characters


def test_select_version_many_versions() -> None:
    versions = [f"{major}.{minor}.{patch}" for major in range(6) for minor in range(30) for patch in range(20)]
    versions += [f"{v}-rc.1" for v in versions[:600]]
    assert len(versions) == 4200
    assert select_version(versions, "^3.2.1") == "3.29.19"
    assert select_version(list(reversed(versions)), "~1.5") == "1.5.19"
    assert select_version(versions, ">=0.0.0-0 <0.1.0") == "0.1.0-rc.1"  # 0.1.0-rc.1 < 0.1.0


# --- index fragments modelled on real repositories --------------------------------------------------------


def index_versions(text: str, chart: str) -> list[str]:
    """Version strings of one chart of an index.yaml, as listed (quoted where the real indexes quote them)."""
    return [entry["version"] for entry in yaml.safe_load(text)["entries"][chart]]


GRAFANA_LIKE = """
apiVersion: v1
entries:
  loki:
  - {name: loki, version: 7.0.0-rc.1, digest: aa01, urls: [loki-7.0.0-rc.1.tgz]}
  - {name: loki, version: 6.55.0, digest: aa02, urls: [loki-6.55.0.tgz]}
  - {name: loki, version: 6.54.1, digest: aa03, urls: [loki-6.54.1.tgz]}
  - {name: loki, version: 6.6.0, digest: aa04, urls: [loki-6.6.0.tgz]}
  - {name: loki, version: 5.48.0, digest: aa05, urls: [loki-5.48.0.tgz]}
  - {name: loki, version: 6.56.0-weekly.1, digest: aa06, urls: [loki-6.56.0-weekly.1.tgz]}
  promtail:
  - {name: promtail, version: 6.17.1, digest: bb01, urls: [promtail-6.17.1.tgz]}
  - {name: promtail, version: 6.9.0, digest: bb02, urls: [promtail-6.9.0.tgz]}
generated: "2025-01-01T00:00:00Z"
"""


def test_index_fragment_grafana_like() -> None:
    loki = index_versions(GRAFANA_LIKE, "loki")
    assert select_version(loki, "6.x") == "6.55.0"  # numeric, not text, order: 6.55.0 > 6.6.0
    assert select_version(loki, "") == "6.55.0"  # 7.0.0-rc.1 is a prerelease
    assert select_version(loki, ">=6.0.0-0 <7") == "7.0.0-rc.1"  # once opted in, <7 admits 7's prereleases
    assert select_version(loki, "~6.54") == "6.54.1"
    assert select_version(index_versions(GRAFANA_LIKE, "promtail"), "6.x") == "6.17.1"


DATADOG_LIKE = """
apiVersion: v1
entries:
  extendeddaemonset:
  - {name: extendeddaemonset, version: v0.3.3, digest: cc01, urls: [extendeddaemonset-v0.3.3.tgz]}
  - {name: extendeddaemonset, version: v0.3.2, digest: cc02, urls: [extendeddaemonset-v0.3.2.tgz]}
  - {name: extendeddaemonset, version: v0.2.0, digest: cc03, urls: [extendeddaemonset-v0.2.0.tgz]}
  datadog-crds:
  - {name: datadog-crds, version: 2.21.0-dev.3, digest: dd01, urls: [datadog-crds-2.21.0-dev.3.tgz]}
  - {name: datadog-crds, version: 2.20.0, digest: dd02, urls: [datadog-crds-2.20.0.tgz]}
  - {name: datadog-crds, version: 2.20.0-dev.5, digest: dd03, urls: [datadog-crds-2.20.0-dev.5.tgz]}
  - {name: datadog-crds, version: 2.20.0-dev.5, digest: dd04, urls: [datadog-crds-2.20.0-dev.5.tgz]}
generated: "2025-01-01T00:00:00Z"
"""


def test_index_fragment_datadog_like() -> None:
    eds = index_versions(DATADOG_LIKE, "extendeddaemonset")
    assert select_version(eds, "v0.3.3") == "v0.3.3"
    assert select_version(eds, "0.3.3") == "v0.3.3"  # no exact string: the equal version, as listed
    assert select_version(eds, "0.3.x") == "v0.3.3"
    assert select_version(eds, "<0.3") == "v0.2.0"
    crds = index_versions(DATADOG_LIKE, "datadog-crds")
    assert select_version(crds, "2.20.0-dev.5") == "2.20.0-dev.5"  # duplicated in the index
    assert select_version(crds, "*") == "2.20.0"
    assert select_version(crds, ">=2.20.0-0 <2.21.0") == "2.21.0-dev.3"


ODDITIES_LIKE = """
apiVersion: v1
entries:
  argo-workflows:
  - {name: argo-workflows, version: 0.46.1, digest: ee01, urls: [argo-workflows-0.46.1.tgz]}
  - {name: argo-workflows, version: 0.46.00, digest: ee02, urls: [argo-workflows-0.46.00.tgz]}
  - {name: argo-workflows, version: 0.45.28, digest: ee03, urls: [argo-workflows-0.45.28.tgz]}
  aws-sigv4-proxy-admission-controller:
  - {name: aws-sigv4-proxy-admission-controller, version: 0.1.2, digest: ff01, urls: [a-0.1.2.tgz]}
  - {name: aws-sigv4-proxy-admission-controller, version: 0.1.1, digest: ff02, urls: [a-0.1.1.tgz]}
  - {name: aws-sigv4-proxy-admission-controller, version: "0.1", digest: ff03, urls: [a-0.1.tgz]}
generated: "2025-01-01T00:00:00Z"
"""


def test_index_fragment_argo_and_eks_oddities() -> None:
    argo = index_versions(ODDITIES_LIKE, "argo-workflows")
    assert select_version(argo, "0.46.0") == "0.46.00"
    assert select_version(argo, "<0.46.1") == "0.46.00"
    assert select_version(argo, "~0.46") == "0.46.1"
    sigv4 = index_versions(ODDITIES_LIKE, "aws-sigv4-proxy-admission-controller")
    assert select_version(sigv4, "0.1") == "0.1"  # the exact string, though as a range 0.1 means ~0.1
    assert select_version(sigv4, "0.1.0") == "0.1"
    assert select_version(sigv4, "~0.1") == "0.1.2"


# --- numbers of thousands of digits (int() refuses more than 4300 digits: it must never be asked) -----------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("1" * 5000 + ".0.0", id="major"),
        pytest.param("1." + "1" * 5000 + ".0", id="minor"),
        pytest.param("v1.0." + "1" * 5000, id="patch"),
        pytest.param("1.0." + "1" * 21, id="patch-of-21-digits"),
    ],
)
def test_a_version_number_of_more_than_twenty_digits_is_an_invalid_version(text: str) -> None:
    with pytest.raises(InvalidVersion, match="does not fit in 64 bits"):
        Version.parse(text)


def test_a_version_number_with_leading_zeros_is_measured_without_them() -> None:
    assert Version.parse("0" * 30 + "1.0.0") == Version.parse("1.0.0")


def test_a_prerelease_number_of_thousands_of_digits_compares_as_text() -> None:
    huge = "1" * 5000
    assert Version.parse(f"1.0.0-{huge}").prerelease == (huge,)


def test_select_version_passes_over_a_tag_with_a_number_of_thousands_of_digits() -> None:
    assert select_version(["v1.0." + "1" * 5000, "v1.0.0"], ">=1.0.0") == "v1.0.0"
