"""Git refs as Flux resolves them, and the clean, credential-safe git runner (real git on local repositories)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mirror.credentials import Credentials
from mirror.errors import SourceNotFoundError, TransferError, UnreachableError, UsageError
from mirror.git.refs import RemoteRefs, ResolvedRef, flux_tag_version, is_valid_ref_name, remote_refs, resolve_ref
from mirror.git.runner import Transport, check_url, redact, run_git

FILE = Transport(allow_file=True)


def oid(n: int) -> str:
    return f"{n:040x}"


A, B, C, D, E, F, G, H, P, T1, T2, X = (oid(n) for n in range(1, 13))


def sample_refs() -> RemoteRefs:
    refs = RemoteRefs(
        {
            "HEAD": A,
            "refs/heads/main": A,
            "refs/heads/dev": B,
            "refs/tags/v1.0.0": C,  # lightweight
            "refs/tags/v1.1.0": T1,  # annotated ...
            "refs/tags/v1.1.0^{}": D,  # ... peeled to D
            "refs/tags/1.2.0": E,
            "refs/tags/v2.0.0-rc.1": T2,
            "refs/tags/v2.0.0-rc.1^{}": F,
            "refs/tags/v1.3": G,  # two parts: Flux does not read it as a version
            "refs/tags/release-1": H,
            "refs/pull/7/head": P,
        }
    )
    refs.head_symref = "refs/heads/main"
    return refs


# --- resolve_ref ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "name", "commit", "kind", "target"),
    [
        ({"branch": "dev"}, "refs/heads/dev", B, "branch", B),
        ({"tag": "v1.0.0"}, "refs/tags/v1.0.0", C, "tag", C),
        ({"tag": "v1.1.0"}, "refs/tags/v1.1.0", D, "tag", T1),  # annotated: the commit is the peeled one
        ({"semver": ">=1.0.0"}, "refs/tags/1.2.0", E, "semver", E),  # rc excluded, v1.3 is no version
        ({"semver": "*"}, "refs/tags/1.2.0", E, "semver", E),
        ({"semver": ">=1.0.0-0"}, "refs/tags/v2.0.0-rc.1", F, "semver", T2),  # prerelease named: allowed
        ({"semver": "1.1.x"}, "refs/tags/v1.1.0", D, "semver", T1),
        ({"semver": "~1.0"}, "refs/tags/v1.0.0", C, "semver", C),
        ({"semver": "<1.1.0"}, "refs/tags/v1.0.0", C, "semver", C),
        ({"name": "refs/pull/7/head"}, "refs/pull/7/head", P, "name", P),
        ({"name": "refs/heads/dev"}, "refs/heads/dev", B, "name", B),
        ({"name": "refs/tags/v1.1.0"}, "refs/tags/v1.1.0", D, "name", T1),
        ({"commit": X}, None, X, "commit", None),
        ({"commit": X.upper()}, None, X, "commit", None),
        ({"commit": X, "branch": "dev"}, "refs/heads/dev", X, "commit", B),
    ],
)
def test_resolve_table(spec: dict[str, str], name: str | None, commit: str, kind: str, target: str | None) -> None:
    resolved = resolve_ref(sample_refs(), spec)
    assert (resolved.name, resolved.commit, resolved.kind, resolved.target) == (name, commit, kind, target)
    assert resolved.ignored == ()
    assert not resolved.default_branch


@pytest.mark.parametrize("spec", [None, {}])
def test_missing_ref_means_the_remote_head(spec: dict[str, str] | None) -> None:
    resolved = resolve_ref(sample_refs(), spec)
    assert resolved == ResolvedRef("refs/heads/main", A, "branch", target=A, default_branch=True)


def test_head_without_symref_is_carried_as_its_commit() -> None:
    refs = RemoteRefs({"HEAD": B, "refs/heads/dev": B})
    assert resolve_ref(refs, None) == ResolvedRef(None, B, "commit", default_branch=True)


@pytest.mark.parametrize(
    ("spec", "winner", "ignored"),
    [
        ({"branch": "dev", "tag": "v1.0.0"}, "refs/tags/v1.0.0", ("branch",)),
        ({"tag": "v1.0.0", "semver": "1.1.x"}, "refs/tags/v1.1.0", ("tag",)),
        ({"semver": "1.1.x", "name": "refs/heads/dev", "branch": "main"}, "refs/heads/dev", ("semver", "branch")),
        ({"commit": X, "name": "refs/heads/dev", "tag": "v1.0.0"}, None, ("name", "tag")),
        ({"commit": X, "branch": "main", "semver": "*"}, "refs/heads/main", ("semver",)),
    ],
)
def test_flux_precedence(spec: dict[str, str], winner: str | None, ignored: tuple[str, ...]) -> None:
    resolved = resolve_ref(sample_refs(), spec)
    assert resolved.name == winner
    assert resolved.ignored == ignored


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"branch": "nope"}, "branch 'nope'"),
        ({"tag": "v9.9.9"}, "tag 'v9.9.9'"),
        ({"semver": ">=5.0.0"}, ">=5.0.0"),
        ({"name": "refs/heads/nope"}, "refs/heads/nope"),
        ({"commit": X, "branch": "gone"}, "branch 'gone'"),
    ],
)
def test_missing_things_are_named_with_exit_2(spec: dict[str, str], needle: str) -> None:
    with pytest.raises(SourceNotFoundError) as caught:
        resolve_ref(sample_refs(), spec, where="spec.git[0].ref", url="https://git.example/repo.git")
    assert caught.value.exit_code == 2
    assert needle in str(caught.value)
    assert "spec.git[0].ref" in str(caught.value)
    assert "https://git.example/repo.git" in str(caught.value)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"brnach": "main"}, "unknown field(s) brnach"),
        ({"branch": 3}, "ref.branch: expected a string"),
        ({"branch": None}, "ref.branch: expected a string"),
        ({"branch": ""}, "ref.branch: is empty"),
        ({"branch": "refs/heads/main"}, "full ref name"),
        ({"branch": "a..b"}, "not a valid git branch name"),
        ({"branch": "feat ure"}, "not a valid git branch name"),
        ({"tag": "v1^{}"}, "not a valid git tag name"),
        ({"tag": "x.lock"}, "not a valid git tag name"),
        ({"name": "main"}, "not a valid full ref name"),
        ({"name": "refs/heads/"}, "not a valid full ref name"),
        ({"commit": "abc123"}, "not a full 40-hex commit id"),
        ({"commit": "g" * 40}, "not a full 40-hex commit id"),
        ({"commit": "a" * 64}, "not a full 40-hex commit id"),
        ({"semver": ">=>1"}, "ref.semver: invalid version constraint"),
        ({"semver": " "}, "ref.semver"),
    ],
)
def test_bad_ref_specs_are_usage_errors(spec: dict[str, object], needle: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_ref(sample_refs(), spec)
    assert caught.value.exit_code == 2
    assert not isinstance(caught.value, SourceNotFoundError)
    assert needle in str(caught.value)


def test_ref_spec_must_be_a_mapping() -> None:
    with pytest.raises(UsageError, match="expected a mapping"):
        resolve_ref(sample_refs(), "main")  # type: ignore[arg-type]


def test_semver_tie_between_commits_is_refused_and_tie_on_one_commit_is_fine() -> None:
    refs = RemoteRefs({"refs/tags/v3.0.0": A, "refs/tags/3.0.0": B})
    with pytest.raises(UsageError, match=r"3\.0\.0, v3\.0\.0 are the same version"):
        resolve_ref(refs, {"semver": ">=3"})
    refs = RemoteRefs({"refs/tags/v3.0.0": T1, "refs/tags/v3.0.0^{}": A, "refs/tags/3.0.0+build": A})
    assert resolve_ref(refs, {"semver": ">=3"}).name == "refs/tags/3.0.0+build"


def test_empty_repository_has_no_head() -> None:
    with pytest.raises(SourceNotFoundError, match="no HEAD"):
        resolve_ref(RemoteRefs(), None)
    refs = RemoteRefs({"refs/heads/dev": B})
    refs.head_symref = "refs/heads/main"  # an unborn default branch
    with pytest.raises(SourceNotFoundError, match="refs/heads/main, which does not exist"):
        resolve_ref(refs, {})


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("v1.2.3", "1.2.3"),
        ("1.2.3", "1.2.3"),
        ("01.02.03", "1.2.3"),
        ("v1.2.3-rc.1+meta", "1.2.3-rc.1+meta"),
        ("1.2-rc.1", "1.2.0-rc.1"),  # three dot-separated parts, then Masterminds' loose parse
        ("v1.2", None),
        ("1", None),
        ("1.2.3.4", None),
        ("V1.2.3", None),
        ("release-1.2.3", None),
    ],
)
def test_flux_tag_versions(tag: str, version: str | None) -> None:
    parsed = flux_tag_version(tag)
    assert (str(parsed) if parsed else None) == version


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("refs/heads/main", True),
        ("refs/tags/v1.0.0", True),
        ("refs/pull/42/head", True),
        ("HEAD", False),
        ("refs/heads/.hidden", False),
        ("refs/heads/x.lock", False),
        ("refs/heads/a@{1}", False),
        ("refs/heads/a:b", False),
        ("refs/heads/a\\b", False),
        ("refs/heads/a//b", False),
        ("refs/heads/a.", False),
        ("refs/heads/-x", True),  # git allows it; mirror always passes full names, never bare ones
    ],
)
def test_ref_name_rules(name: str, valid: bool) -> None:
    assert is_valid_ref_name(name) is valid


# --- remote_refs on a real repository ------------------------------------------------------------------------


def git(*args: str, cwd: Path) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    repo = tmp_path / "upstream"
    repo.mkdir()
    git("init", "-q", "-b", "trunk", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", "one", cwd=repo)
    git("tag", "v1.0.0", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", "two", cwd=repo)
    git("tag", "-a", "-m", "annotated", "v1.1.0", cwd=repo)
    git("branch", "side", "v1.0.0", cwd=repo)
    return repo


def test_remote_refs_lists_heads_peeled_tags_and_head(upstream: Path) -> None:
    refs = remote_refs(upstream.resolve().as_uri(), transport=FILE)
    one = git("rev-parse", "v1.0.0", cwd=upstream)
    two = git("rev-parse", "trunk", cwd=upstream)
    tag_object = git("rev-parse", "refs/tags/v1.1.0", cwd=upstream)
    assert refs.head_symref == "refs/heads/trunk"
    assert refs["HEAD"] == two
    assert refs["refs/heads/side"] == one
    assert refs["refs/tags/v1.0.0"] == one
    assert refs["refs/tags/v1.1.0"] == tag_object != two
    assert refs.peeled("refs/tags/v1.1.0") == two
    assert refs.tags() == ["v1.0.0", "v1.1.0"]
    resolved = resolve_ref(refs, None)
    assert (resolved.name, resolved.commit, resolved.default_branch) == ("refs/heads/trunk", two, True)
    assert resolve_ref(refs, {"semver": "^1"}).commit == two


def test_file_urls_only_when_allowed(upstream: Path) -> None:
    with pytest.raises(UsageError, match="file:// URLs are not allowed"):
        remote_refs(upstream.resolve().as_uri())


def test_missing_repository_is_exit_2(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError) as caught:
        remote_refs((tmp_path / "nothing-here").as_uri(), transport=FILE)
    assert caught.value.exit_code == 2


# --- runner: URLs, credentials and a closed environment ---------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://user:s3cr3t-token@git.example/repo.git",
        "https://s3cr3t-token@git.example/repo.git",
        "http://:s3cr3t-token@git.example/repo.git",
        "ssh://git:s3cr3t-token@git.example/repo.git",
    ],
)
def test_urls_with_credentials_are_refused_before_use(url: str) -> None:
    for call in (
        lambda: check_url(url, Transport(allow_ssh=True)),
        lambda: remote_refs(url),
        lambda: run_git(["ls-remote", url]),
    ):
        with pytest.raises(UsageError) as caught:
            call()
        assert "s3cr3t-token" not in str(caught.value)
        assert "s3cr3t-token" not in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("url", "transport", "needle"),
    [
        ("git@github.com:org/repo.git", Transport(), "is not a URL git may use"),
        ("/srv/git/repo.git", Transport(), "is not a URL git may use"),
        ("ext::sh%20-c%20touch", Transport(), "not a URL git may use"),
        ("ftp://host/repo.git", Transport(), "not a URL git may use"),
        ("ssh://git@host/repo.git", Transport(), "ssh:// URLs are not allowed"),
        ("file:///srv/repo.git", Transport(), "file:// URLs are not allowed"),
        ("https:///repo.git", Transport(), "has no host"),
        ("https://host/repo.git#frag", Transport(), "fragment"),
        ("https://host/re po.git", Transport(), "whitespace"),
        ("--upload-pack=touch", Transport(), "not a URL"),
    ],
)
def test_url_rules(url: str, transport: Transport, needle: str) -> None:
    with pytest.raises(UsageError, match=needle.replace("(", r"\(")):
        check_url(url, transport)


def test_accepted_urls() -> None:
    assert check_url("https://git.example/org/repo.git") == "https://git.example/org/repo.git"
    assert check_url("http://127.0.0.1:8080/repo.git")
    assert check_url("ssh://git@git.example/org/repo.git", Transport(allow_ssh=True))
    assert check_url("file:///srv/repo.git", Transport(allow_file=True))


def test_redact() -> None:
    creds = Credentials("robot", "pa ss/word")
    text = (
        "fatal: unable to access 'https://robot:tok@host/x.git/': pa ss/word and pa%20ss%2Fword "
        + base64.b64encode(b"robot:pa ss/word").decode()
    )
    shown = redact(text, creds)
    assert "tok" not in shown and "pa ss/word" not in shown and "pa%20ss%2Fword" not in shown
    assert base64.b64encode(b"robot:pa ss/word").decode() not in shown
    assert "https://host/x.git/" in shown
    assert redact("see http://u:p@h/ and ssh://git@h/r", ["nothing"]) == "see http://h/ and ssh://h/r"


def test_the_environment_is_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    global_config = tmp_path / "gitconfig"
    global_config.write_text('[user]\n\tname = leaked-global\n[url "https://evil.example/"]\n\tinsteadOf = https://\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(global_config))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GIT_SSH_COMMAND", "touch /tmp/never")
    config = run_git(["config", "--list"]).stdout
    assert "leaked-global" not in config and "evil.example" not in config
    assert "core.hookspath=/dev/null" in config
    assert "protocol.allow=never" in config
    env = run_git(["-c", "alias.showenv=!env", "showenv"]).stdout
    names = {line.split("=", 1)[0] for line in env.splitlines()}
    assert {"HTTPS_PROXY", "GIT_DIR", "GIT_SSH_COMMAND", "MIRROR_GIT_PASSWORD"}.isdisjoint(names)
    assert "GIT_CONFIG_GLOBAL=/dev/null" in env
    assert "GIT_TERMINAL_PROMPT=0" in env
    assert "GIT_ALLOW_PROTOCOL=https:http" in env


class _AuthServer(BaseHTTPRequestHandler):
    """Answers every request with 401 Basic and remembers the Authorization headers it was sent."""

    seen: list[str]

    def do_GET(self) -> None:
        self.server.seen.append(self.headers.get("Authorization", ""))  # type: ignore[attr-defined]
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def auth_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AuthServer)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_credentials_reach_git_through_askpass_only_and_never_the_error(
    auth_server: ThreadingHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A git on PATH that logs its argv before running the real one: the password must not be in any argv.
    real_git = shutil.which("git")
    assert real_git
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    argv_log = tmp_path / "argv.log"
    wrapper = wrapper_dir / "git"
    wrapper.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{argv_log}'\nexec '{real_git}' \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper_dir}:{os.environ['PATH']}")

    password = "s3cr3t-Pa55word"
    url = f"http://127.0.0.1:{auth_server.server_address[1]}/org/repo.git"
    with pytest.raises(TransferError) as caught:
        remote_refs(url, Credentials("robot", password))
    error = caught.value
    assert error.exit_code == 4
    assert password not in str(error) and password not in (error.hint or "")
    assert "refused" in (error.hint or "")
    # git did send the credentials it read from the askpass helper ...
    sent = {base64.b64decode(h.split()[1]).decode() for h in auth_server.seen if h.startswith("Basic ")}  # type: ignore[attr-defined]
    assert sent == {f"robot:{password}"}
    # ... and never had them on a command line.
    assert argv_log.exists()
    assert password not in argv_log.read_text()


def test_no_credentials_and_a_401_is_an_auth_error(auth_server: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{auth_server.server_address[1]}/org/repo.git"
    with pytest.raises(TransferError) as caught:
        remote_refs(url)
    assert caught.value.exit_code == 4
    assert "credentials" in (caught.value.hint or "")


def test_unreachable_host_with_a_password_does_not_leak_it() -> None:
    password = "another-s3cr3t"
    with pytest.raises(UnreachableError) as caught:
        remote_refs("http://127.0.0.1:1/repo.git", Credentials("robot", password))
    assert caught.value.exit_code == 4
    assert password not in str(caught.value)


def test_timeout_stops_git(tmp_path: Path) -> None:
    with pytest.raises(TransferError, match="did not finish within"):
        run_git(["-c", "alias.wait=!sleep 5", "wait"], timeout=0.5)


def test_a_semver_ref_passes_over_a_tag_whose_number_has_thousands_of_digits() -> None:
    refs = RemoteRefs({"refs/tags/v1.0.0": A, f"refs/tags/v1.0.{'1' * 5000}": B})
    assert resolve_ref(refs, {"semver": ">=1.0.0"}).commit == A
