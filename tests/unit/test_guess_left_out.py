"""Which failures of an image a chart only guessed leave it out with a warning, and which stop the collect."""

from __future__ import annotations

import pytest

from mirror.collector.guesses import guess_left_out
from mirror.errors import (
    DigestMismatchError,
    RateLimitedError,
    RegistryHTTPError,
    SlowTransferError,
    TransferError,
    UnreachableError,
)
from mirror.manifest.model import ImageSource
from mirror.oci.reference import parse_reference

HOST = "guessed.example"
REFUSED = UnreachableError(f"cannot reach registry {HOST}: [Errno 111] Connection refused")


def _image(*, optional: bool = True) -> ImageSource:
    return ImageSource(
        parse_reference(f"{HOST}/team/app:1.0.0"),
        None,
        "chart demo@1.0.0",
        found_by=("chart demo@1.0.0: values: .image (tag from appVersion)",),
        optional=optional,
        via="chart",
    )


def _answer(status: int) -> RegistryHTTPError:
    return RegistryHTTPError(f"{HOST}: manifest team/app:1.0.0 answered {status}", status=status)


def test_an_unreachable_host_leaves_the_guess_out_naming_host_why_and_the_chart():
    warning = guess_left_out(_image(), REFUSED, needed_hosts=set())
    assert warning is not None
    assert warning.startswith(f"{HOST}/team/app:1.0.0: {HOST} cannot be reached (cannot reach registry")
    assert "Connection refused" in warning and "chart demo@1.0.0" in warning and "left out" in warning


@pytest.mark.parametrize("status", [400, 401, 403, 405, 410])
def test_a_host_refusing_the_guess_leaves_it_out(status):
    warning = guess_left_out(_image(), _answer(status), needed_hosts=set())
    assert warning is not None and f"{HOST} refuses it" in warning


def test_a_refusal_leaves_the_guess_out_even_on_a_host_listed_images_need():
    # Docker Hub answers 401 for a repository that does not exist: about the repository, not the host.
    assert guess_left_out(_image(), _answer(401), needed_hosts={HOST}) is not None


def test_an_unreachable_host_that_listed_images_need_stops_the_collect():
    assert guess_left_out(_image(), REFUSED, needed_hosts={HOST}) is None


def test_an_image_the_chart_states_is_never_left_out():
    assert guess_left_out(_image(optional=False), REFUSED, needed_hosts=set()) is None
    assert guess_left_out(_image(optional=False), _answer(403), needed_hosts=set()) is None


@pytest.mark.parametrize(
    "error",
    [
        _answer(429),
        _answer(408),
        _answer(500),
        _answer(503),
        RateLimitedError(f"{HOST}: pull quota nearly spent", rate_limit={"host": HOST}),
        SlowTransferError(f"manifest from {HOST}: not whole within 30 s", retryable=False),
        DigestMismatchError(f"{HOST}: manifest of 10 bytes, its descriptor says 9"),
        TransferError(f"transfer from registry {HOST} failed: RemoteProtocolError()"),
    ],
    ids=["429", "408", "500", "503", "rate-limited", "slow", "digest-mismatch", "broken-transfer"],
)
def test_any_other_failure_stops_the_collect(error):
    assert guess_left_out(_image(), error, needed_hosts=set()) is None
