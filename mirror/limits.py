"""Every size, count and time limit in one place, so a reviewer can see what bounds the tool."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # The type checker sees a plain dataclass: Limits(...) keyword arguments checked field by field.
    from dataclasses import dataclass as _limits_dataclass
else:
    from dataclasses import dataclass

    def _limits_dataclass(**options: bool):  # init, repr and eq are written in the class, see below
        return dataclass(init=False, repr=False, eq=False, **options)


MiB = 1024 * 1024
GiB = 1024 * MiB


# init, repr and eq are written below, once for all fields: dataclass generating them for a hundred fields cost
# ~10 ms on every command's start (docs/development.md, "Start-up"). They behave as dataclass's would.
@_limits_dataclass(frozen=True)
class Limits:
    # Documents read whole into memory: distribution caps manifests at 4 MiB, so do we.
    max_manifest_bytes: int = 4 * MiB
    max_index_json_bytes: int = 16 * MiB
    max_inventory_bytes: int = 64 * MiB
    max_token_response_bytes: int = 1 * MiB
    max_error_body_bytes: int = 64 * 1024
    # A response's head, its interim (1xx) heads and a chunked body's trailer included: what httpcore allowed.
    max_response_head_bytes: int = 100 * 1024
    # Parsing what others wrote (upstream files, bundle content). YAML nodes count an alias at the size of what
    # it points at, so an alias bomb is refused before it is built; one budget per file, or per chart with its
    # vendored sub-charts. JSON nesting is checked before json.loads (a deep `[[[[` would hit RecursionError).
    max_yaml_nodes: int = 1_000_000
    max_yaml_depth: int = 128
    max_json_depth: int = 200
    # Flux fleets: kustomizations followed into kustomizations, and the objects of one fleet as carried in the
    # bundle (checked at collect while the blob is built, and at import).
    max_kustomize_depth: int = 64
    max_flux_objects_bytes: int = 64 * MiB
    # --flux-out night after night: the record of the files an import wrote there (read before the next night).
    max_flux_out_record_bytes: int = 16 * MiB
    max_files_out_record_bytes: int = 16 * MiB
    # --mirror-config night after night: the record of the node files an import wrote there.
    max_mirror_config_record_bytes: int = 1 * MiB
    # Streaming.
    copy_chunk_bytes: int = 1 * MiB
    # The read size of verify's hashing: big reads keep Python's per-read cost far below hashlib's (which lets go
    # of the GIL, so files hash in parallel threads); one buffer of this size per thread. 1 MiB rather than 4: the
    # kernel's copy from the page cache cost a third less system time (the buffers stay in the cores' caches).
    verify_read_bytes: int = 1 * MiB
    # Blobs above this size are uploaded in PATCH chunks of upload_chunk_bytes, each one resumable. Chunks as big as
    # the biggest monolithic upload: no request body is bigger, and each PATCH costs distribution ~10 ms (auth, its
    # hash state saved and resumed), 32 of them for a 2 GB layer at 64 MiB.
    monolithic_upload_max_bytes: int = 128 * MiB
    upload_chunk_bytes: int = 128 * MiB
    # Import: blobs of at least this size go up into upload sessions while they are hashed, and the sessions are
    # finished only once the whole bundle has verified (docs/importer.md, "The transaction"). A streamed blob
    # costs one request more than a small one (POST, PATCH, PUT); hashing 16 MiB takes longer than that request.
    stream_upload_min_bytes: int = 16 * MiB
    # At most this many such sessions stay open, waiting for the commit (the largest blobs first); the others are
    # hashed, then uploaded after the verification as small ones are. Each open session is a file on the registry.
    max_open_uploads: int = 256
    # Network.
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    max_attempts: int = 4
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 60.0
    # Pull quotas (Docker Hub's `ratelimit-remaining`): below this many pulls left in the window, collect sends no
    # further manifest GET to that registry and stops with exit 4 (`collect --min-pull-quota` sets it per run).
    min_ratelimit_remaining: int = 10
    max_redirects: int = 5
    max_tag_pages: int = 100
    # Tag lists are streamed page by page into the selection; this bounds the work one repository can ask for.
    max_tags: int = 1_000_000
    # Image tag selectors (`tags:` of an image entry): the tags one selector may choose, and its regex's length.
    max_selected_tags: int = 1_000
    max_tag_regex_chars: int = 256
    # `collect --lock FILE`: the lock is read whole (JSON, from wherever the operator got it) and checked.
    max_lock_bytes: int = 16 * MiB
    max_lock_artifacts: int = 100_000
    # `audit`: the repositories a registry's catalog may list (read page by page, like tags).
    max_repositories: int = 1_000_000
    # Deadlines and speed floors (issue 20): an upstream that drips must not hold a run forever, and a slow but
    # honest link (a data diode, a satellite hop, a throttled proxy) must not be cut. So the floor is low and
    # measured over a long window: a transfer that moves fewer than min_bytes_per_s * speed_window_s bytes in
    # any window of speed_window_s fails (every request and every streamed body: blobs, charts, uploads, git
    # through http.lowSpeedLimit/lowSpeedTime). A small document (a manifest, a token answer, a tag list page,
    # an index.yaml) must also arrive whole within document_deadline_s of its request. A speed floor is retried
    # like a broken transfer (a blob resumes where it stopped), a missed deadline is not (mirror.netguard).
    min_bytes_per_s: int = 1024
    speed_window_s: float = 60.0
    document_deadline_s: float = 600.0
    # Git: every source (all the git calls it needs) must finish within git_source_timeout_s, plus its size at
    # git_timeout_bytes_per_s where the size is known (an import's bundle, an incremental collect's base).
    git_source_timeout_s: float = 3600.0
    git_timeout_bytes_per_s: int = 64 * 1024
    # Git, besides: ls-remote of one repository, a git bundle's header (its refs: the whole header and one
    # line), and the tail of git's own stderr kept in an error message.
    git_ls_remote_timeout_s: float = 300.0
    max_git_bundle_header_bytes: int = 64 * MiB
    max_git_bundle_header_line: int = 64 * 1024
    max_git_message_chars: int = 4000
    # Git fetch size: what one git fetch from an upstream may add to its repository (packs, loose objects,
    # measured every git_fetch_poll_s while git runs; git is stopped past it). In a collect --max-bundle-size
    # caps it further: a Git source counts against the bundle as images do.
    max_git_fetch_bytes: int = 64 * GiB
    git_fetch_poll_s: float = 0.25
    # Ctrl-C / SIGTERM: how long an interrupted run waits for its worker threads to unwind (their transfers are
    # already cut) before the process leaves without them.
    interrupt_grace_s: float = 3.0
    # Helm repositories and charts. A chart archive (compressed bytes read) is capped at max_chart_bytes; inside
    # it, Helm's own limits (MaxDecompressedChartSize, MaxDecompressedFileSize) and ours on its tar headers.
    # Vendored sub-chart archives share the budget of the chart that carries them, so nesting cannot multiply it.
    max_index_yaml_bytes: int = 64 * MiB
    max_chart_bytes: int = 100 * MiB
    max_chart_content_bytes: int = 100 * MiB  # file content of the whole chart, sub-charts included
    max_chart_file_bytes: int = 5 * MiB  # one file
    max_chart_members: int = 10_000  # tar headers of every kind, nested archives included
    max_chart_header_bytes: int = 1 * MiB  # the data of one PAX or GNU long-name header
    max_subchart_depth: int = 5  # sub-charts inside sub-charts
    # Version constraints (Masterminds syntax) longer than this are refused: a limit of mirror, not of Helm.
    max_constraint_chars: int = 1024
    # index.yaml is walked as YAML events, keeping only the charts asked for: these bound that walk's work
    # (a real 4 MB index has about 200,000 nodes) and what it keeps for one chart (real charts: under 2,000).
    max_index_yaml_nodes: int = 8_000_000
    max_index_chart_versions: int = 50_000
    max_index_yaml_anchors: int = 10_000  # anchored nodes remembered (compactly) for aliases; helm writes none
    # spec.files: one file (downloaded or read; a larger one is refused as it streams), and how many one collect
    # carries.
    max_file_bytes: int = 64 * GiB
    max_files: int = 10_000
    # Chart dependencies are followed breadth-first; an endless chain c0 → c1 → … stops at these.
    max_chart_dependency_depth: int = 16
    max_charts: int = 2_000
    # Images found in one chart's values (or one HelmRelease's) and in one Flux fleet; real ones have dozens.
    max_images_per_chart: int = 10_000
    max_images_per_fleet: int = 50_000
    # Chart image discovery: `helm template` (time, output read), and the walk of values, which counts
    # nodes once each however many aliases reach them, and charts once per alias they are used under.
    helm_timeout_s: float = 120.0
    max_render_bytes: int = 64 * MiB
    max_values_nodes: int = 500_000
    max_values_depth: int = 64
    max_chart_walks: int = 1_000
    max_values_file_bytes: int = 16 * MiB  # a MirrorSet chart entry's valuesFiles, each (read when it is loaded)
    # Kustomizations whose source is an OCIRepository (issue 14): the artifact's layer is downloaded and
    # unpacked by hand to read the manifests in it. Real ones are kilobytes to a few MiB.
    max_flux_artifact_bytes: int = 100 * MiB  # the layer (tar+gzip) as the manifest declares it
    max_flux_artifact_content_bytes: int = 256 * MiB  # the files unpacked from it, in all
    max_flux_artifact_files: int = 20_000  # tar members of every type
    # Manifests attached to a carried manifest (signatures, attestations, SBOMs; docs/supply-chain.md): how deep
    # attached manifests of attached manifests are followed (a signature on an SBOM is 2), how many one
    # manifest may have, and how many one image may have in all, its index's children and every level included
    # (per manifest and level alone, 100 ** 4). Real images have a handful to a few dozen; past any bound the
    # collect is refused.
    max_attached_depth: int = 4
    max_attached_per_subject: int = 100
    max_attached_per_image: int = 1_000
    # Bundles.
    max_bundle_members: int = 1_000_000
    max_graph_depth: int = 4
    # An incremental collect reads its base bundle's image indexes; nested deeper than any registry or tool
    # makes them, they are not followed.
    max_base_index_depth: int = 8
    # A blob's declared size, refused before any download: far above any real layer, far below "1 TB".
    max_blob_bytes: int = 256 * GiB
    # Hostile bundles (verification order and bounds): what a forged or junk-filled bundle can make us do.
    # A tar or directory may hold at most the files its inventory lists, its envelopes, and this many more
    # (directories, the inventory itself, strays reported one by one up to max_problems); the rest is not even
    # indexed. Generous, so junk envelopes beyond max_envelopes are reported as such, not as surplus members.
    member_slack: int = 1024
    # Envelopes under signatures/: how many are read (beyond it, the first by name, and one problem says so),
    # the size of each, and the signatures in each (every one may cost a public-key operation per policy key).
    max_envelopes: int = 64
    max_envelope_bytes: int = 64 * 1024
    max_signatures_per_envelope: int = 16
    # Upstream signatures (docs/supply-chain.md): the signatures examined for one image (each may cost a
    # public-key operation, or a certificate chain; real images have a few).
    max_upstream_signatures: int = 64
    # The import journal (docs/journal.md): one line, read one at a time (an entry lists at most what an
    # inventory does, so the inventory's bound); an error message kept in an entry.
    max_journal_entry_bytes: int = 64 * MiB
    max_journal_message_chars: int = 2000
    # Problems listed before the rest are summarised by code in one line (and counted in JSON).
    max_problems: int = 100
    # `audit`: drift listed one by one (text and --json); past it, only counted by code.
    max_drift_listed: int = 10_000
    # Review (inspect, diff): the facts read from a bundle's small blobs, shown, not trusted. Documents as the
    # registry client caps manifests; a chart larger than review_max_chart_bytes is listed without its
    # Chart.yaml facts; the children of one index whose configs are read; labels and characters kept of one.
    review_max_document_bytes: int = 4 * MiB
    review_max_chart_bytes: int = 20 * MiB
    review_max_chart_content_bytes: int = 50 * MiB
    review_max_platforms: int = 64
    review_max_labels: int = 100
    review_max_text_chars: int = 2000
    # Review: what upstream vendors attach to an image (mirror/supplychain/summary.py). One blob of an attached
    # manifest (a signature payload, a DSSE envelope, a Sigstore bundle, an SBOM) read for what it says: real
    # SBOMs of large images run to tens of MiB; a larger one is listed without its package count. And the layers
    # read of one attached manifest (cosign's .sig holds one per signature).
    review_max_attached_blob_bytes: int = 32 * MiB
    review_max_attached_layers: int = 16
    # Review: commits listed per moved ref (the count beyond is still given), git log's time, and the size of
    # one commit object a thin-pack log still reads.
    review_max_commits: int = 50
    review_git_timeout_s: float = 300.0
    review_max_commit_bytes: int = 1 * MiB
    # Review: the objects of one Flux fleet listed by inspect (the count beyond is given), and the changed fields
    # of one object listed by a diff (the count beyond is given), and the characters of one value shown there.
    # The blob itself is capped by max_flux_objects_bytes, as when it was collected.
    review_max_flux_objects: int = 1000
    review_max_object_fields: int = 20
    review_max_value_chars: int = 120
    # Keyless verification of upstream signatures (issue 15): a Sigstore trusted root (real ones: under 10 KiB),
    # a Sigstore bundle or one part of cosign's classic layout (its payload, its Rekor entry; real ones: a few
    # KiB, an attestation with an SBOM inside: megabytes), a certificate or chain in PEM, and an identity regexp.
    max_trusted_root_bytes: int = 4 * MiB
    max_sigstore_bundle_bytes: int = 16 * MiB
    max_certificate_pem_bytes: int = 64 * 1024
    max_identity_regexp_chars: int = 1024
    # mirror serve (docs/serve.md): connections served at once (a thread each; more wait in the listen queue), how
    # long a connection may stay silent (no request, a stalled TLS handshake, a client that stops reading its
    # answer) before it is closed, the longest request path looked at (a distribution name is at most 255
    # characters: anything longer is answered 404 unread, and logged cut to this length), and the most entries
    # one page of tags/list or _catalog holds.
    serve_max_connections: int = 64
    serve_idle_timeout_s: float = 60.0
    serve_max_path_chars: int = 1024
    serve_max_page_entries: int = 10_000

    if not TYPE_CHECKING:  # the type checker keeps dataclass's signature, one typed keyword per field

        def __init__(self, **overrides: object) -> None:
            # A field not given reads its default from the class, as dataclass stores it there.
            for name, value in overrides.items():
                if name not in _FIELD_NAMES:
                    raise TypeError(f"Limits.__init__() got an unexpected keyword argument {name!r}")
                object.__setattr__(self, name, value)

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in _FIELD_NAMES)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Limits)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELD_NAMES)
        return f"{self.__class__.__qualname__}({values})"


_FIELD_NAMES = tuple(f.name for f in fields(Limits))  # in declaration order, as dataclass's repr lists them


DEFAULT_LIMITS = Limits()
