"""When an image a chart only guessed fails to resolve, whether the collect goes on without it.

The rule is in docs/collector.md ("Guessed images"): a guess may name a host that is no registry at all, so
its host refusing it or being out of reach is a warning, unless the collect needs that host anyway.
"""

from __future__ import annotations

from collections.abc import Collection

from mirror.errors import RegistryHTTPError, TransferError, UnreachableError
from mirror.manifest.model import ImageSource

# 4xx answers that a later attempt may not repeat: a request timeout and a rate limit (the quota is the host's,
# and a listed image on it would be refused next).
_PASSING_STATUSES = frozenset({408, 429})


def _refused(error: TransferError) -> bool:
    """The host answered, and refused this image for good: 401, 403 and the other 4xx except the passing ones."""
    return isinstance(error, RegistryHTTPError) and 400 <= error.status < 500 and error.status not in _PASSING_STATUSES


def guess_left_out(image: ImageSource, error: TransferError, needed_hosts: Collection[str]) -> str | None:
    """The warning for a guessed image left out after `error`, or None when `error` must stop the collect.

    `needed_hosts`: the registries of the images the collect does not only guess. Out of reach, such a host
    fails the collect through them anyway, and a guess on it failing to connect while they did says the host
    is flaky, not that the guess is wrong: a re-run resumes. A refusal is about one repository, wherever it is.
    """
    if not image.optional:
        return None
    host = image.reference.registry
    if _refused(error):
        why = "refuses it"
    elif isinstance(error, UnreachableError) and host not in needed_hosts:
        why = "cannot be reached"
    else:
        return None
    guessed_by = "; ".join(image.found_by) or image.origin
    return f"{image.reference}: {host} {why} ({error.message}); only guessed by {guessed_by}, so it is left out"
