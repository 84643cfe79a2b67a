"""A trusted root the collector carries for keyless rules (an artifact of kind `trusted-root`): checked with the
bundle's files, listed by inspect, and not a source that allowedSources judges."""

from __future__ import annotations

import json
from pathlib import Path

from mirror.bundle.opening import open_bundle
from mirror.bundle.verify import check_bundle
from mirror.review.html import review_html
from mirror.review.jsonout import review_json
from mirror.review.model import build_review
from mirror.review.text import review_text
from mirror.supplychain.roots import trusted_root_record
from mirror.trust.check import check_trust
from tests.support.signedbundles import SmallBundle, make_trust, sign

SOURCE = "registry.example/team/app:1.0"


def bundle_with_root(root: Path, *, carried: bool = True) -> SmallBundle:
    bundle = SmallBundle(root)
    bundle.image(SOURCE)
    if carried:
        bundle.blob(b"ROOT")
    bundle.artifacts.append(trusted_root_record("trusted_root.json", b"ROOT"))
    bundle.finish()
    return bundle


def test_a_carried_trusted_root_is_checked_with_the_bundle_s_files(tmp_path):
    bundle = bundle_with_root(tmp_path / "b")
    assert check_bundle(open_bundle(bundle.root)).problems == []


def test_a_trusted_root_listed_without_its_blob_is_refused(tmp_path):
    bundle = bundle_with_root(tmp_path / "b", carried=False)
    [problem] = check_bundle(open_bundle(bundle.root)).problems
    assert problem.code == "GRAPH_INVALID" and "trusted root" in problem.message


def test_allowed_sources_do_not_judge_a_carried_trusted_root(tmp_path):
    trust = make_trust(tmp_path / "trust", allowed_sources=["registry.example/*"])
    bundle = bundle_with_root(tmp_path / "b")
    sign(bundle.root, trust)
    assert check_trust(bundle.root, trust.policy).problems == []


def test_inspect_lists_a_carried_trusted_root_in_text_json_and_html(tmp_path):
    trust = make_trust(tmp_path / "trust", allowed_sources=["registry.example/*"])
    bundle = bundle_with_root(tmp_path / "b")
    sign(bundle.root, trust)
    review = build_review(bundle.root, trust=trust.policy)
    digest = trusted_root_record("trusted_root.json", b"ROOT").digest
    assert digest in review_text(review)
    assert digest in review_html(review)
    listed = json.dumps(review_json(review))
    assert digest in listed
    assert "SOURCE_NOT_ALLOWED" not in listed
