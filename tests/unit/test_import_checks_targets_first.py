"""The import reaches the registry, and is let in to push there, before the trust state records the bundle: a
typo'd --registry or refused credentials leave nothing recorded and nothing written, so a run with the right
flags is not refused for a bundle that was never imported."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mirror.errors import MirrorError, TransferError
from mirror.importer.run import PartialImportError, WriteLog, import_bundle
from mirror.limits import DEFAULT_LIMITS
from mirror.trust.state import load_state
from tests.unit.registry_sim import RegistrySim
from tests.unit.test_collect_import_sim import INTERNAL, _collect, _policy, _upstream
from tests.unit.test_collect_import_sim import collector_key as collector_key  # the fixture

ONE_ATTEMPT = replace(DEFAULT_LIMITS, max_attempts=1)


@pytest.fixture
def no_configured_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MIRROR_REGISTRY_USERNAME", "MIRROR_REGISTRY_PASSWORD", "REGISTRY_AUTH_FILE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "docker").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("HOME", str(tmp_path))


def records_no_bundle(policy: Path) -> bool:
    """The trust state's rollback record is untouched (the attempt itself is journaled: docs/journal.md)."""
    state = load_state(policy.parent / "state.json")
    return state.collectors == {} and state.latest_created is None


def _signed_bundle(tmp_path: Path, collector_key: tuple[Path, Path]) -> tuple[Path, Path]:
    """A signed bundle and the trust policy that accepts it; the policy's state file is trust/state.json."""
    upstream, _ = _upstream()
    return _collect(tmp_path, upstream, collector_key[0]), _policy(tmp_path, collector_key[1])


def test_an_unreachable_registry_is_found_before_the_trust_state_records_the_bundle(
    tmp_path: Path, collector_key: tuple[Path, Path]
) -> None:
    bundle, policy = _signed_bundle(tmp_path, collector_key)
    with pytest.raises(TransferError) as failed:
        import_bundle(bundle, "http://127.0.0.1:1/rt", trust=policy, limits=ONE_ATTEMPT)
    assert "partially imported" not in str(failed.value)
    assert records_no_bundle(policy)


def test_credentials_the_registry_refuses_are_found_before_the_trust_state_records_the_bundle(
    tmp_path: Path, collector_key: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, policy = _signed_bundle(tmp_path, collector_key)
    internal = RegistrySim(INTERNAL)
    internal.auth, internal.users = "basic", {"importer": "right"}
    monkeypatch.setenv("MIRROR_REGISTRY_USERNAME", "importer")
    monkeypatch.setenv("MIRROR_REGISTRY_PASSWORD", "typo")
    with pytest.raises(MirrorError) as refused:
        import_bundle(bundle, f"https://{INTERNAL}", trust=policy, transport=internal.transport(), limits=ONE_ATTEMPT)
    assert "access denied" in str(refused.value) and "partially imported" not in str(refused.value)
    assert records_no_bundle(policy)


def test_a_registry_that_lets_the_importer_pull_but_not_push_is_found_before_the_trust_state_records_the_bundle(
    tmp_path: Path, collector_key: tuple[Path, Path], no_configured_credentials: None
) -> None:
    bundle, policy = _signed_bundle(tmp_path, collector_key)
    internal = RegistrySim(INTERNAL)
    internal.auth, internal.users = "bearer", {"importer": "secret"}  # anonymous: a pull-only token
    with pytest.raises(MirrorError) as refused:
        import_bundle(bundle, f"https://{INTERNAL}", trust=policy, transport=internal.transport(), limits=ONE_ATTEMPT)
    assert "access denied" in str(refused.value) and "partially imported" not in str(refused.value)
    assert records_no_bundle(policy)


def test_the_push_check_leaves_no_upload_open_on_the_registry(
    tmp_path: Path, collector_key: tuple[Path, Path], no_configured_credentials: None
) -> None:
    bundle, policy = _signed_bundle(tmp_path, collector_key)
    internal = RegistrySim(INTERNAL)
    import_bundle(bundle, f"https://{INTERNAL}", trust=policy, transport=internal.transport())
    assert internal.uploads == {}
    assert (policy.parent / "state.json").exists()


def test_a_partial_import_without_a_trust_state_does_not_claim_the_state_records_the_bundle() -> None:
    unsigned = PartialImportError(TransferError("registry went away"), WriteLog(state_recorded=False))
    assert "trust state" not in f"{unsigned} {unsigned.hint}"


def test_a_partial_import_under_a_trust_policy_says_the_state_records_the_bundle() -> None:
    signed = PartialImportError(TransferError("registry went away"), WriteLog(state_recorded=True))
    assert "trust state already records this bundle" in str(signed.hint)
