"""Discovery with a chart entry's values, valuesFiles, kubeVersion and apiVersions, and image guesses in env values.

A fake `helm` that records its arguments shows what reaches `helm template`; the real helm that scripts/setup
installs (tests/support/helmtool.py) shows the values, capabilities and Kubernetes version change what renders.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from mirror.helm.archive import read_chart
from mirror.helm.discover import FoundImage, discover_images
from mirror.manifest.model import ChartValues
from tests.unit.test_helm_discover import chart_yaml, fake_helm, tgz

OVERRIDES = ChartValues(
    files=(("values/base.yaml", b"image:\n  tag: '2.0'\n"), ("values/prod.yaml", b"replicaCount: 3\n")),
    inline=b"image:\n  tag: '3.0'\n",
    kube_version="1.31.0",
    api_versions=("monitoring.coreos.com/v1", "policy/v1/PodDisruptionBudget"),
)


def recording_helm(tmp_path: Path, output: str = "") -> str:
    """A helm that keeps its arguments (one a line) and a copy of every -f file, in order, and prints `output`."""
    (tmp_path / "rendered.yaml").write_text(output)
    (tmp_path / "seen").mkdir()
    return fake_helm(
        tmp_path,
        textwrap.dedent(
            f"""\
            n=0; for a in "$@"; do printf '%s\\n' "$a" >> "{tmp_path}/args"; done
            while [ $# -gt 0 ]; do
              if [ "$1" = -f ]; then n=$((n+1)); cp "$2" "{tmp_path}/seen/$n.yaml"; shift; fi
              shift
            done
            cat "{tmp_path}/rendered.yaml"
            """
        ),
    )


def run(tmp_path: Path, values: ChartValues, output: str = "", chart_values: str = "") -> dict[str, FoundImage]:
    files: dict[str, str | bytes] = {"Chart.yaml": chart_yaml(app_version=None)}
    if chart_values:
        files["values.yaml"] = chart_values
    data = tgz(files)
    chart = read_chart(data, where="demo.tgz")
    found = discover_images(chart, helm=recording_helm(tmp_path, output), archive=data, values=values)
    return {f.reference: f for f in found}


def arguments(tmp_path: Path) -> list[str]:
    return (tmp_path / "args").read_text().splitlines()


# What reaches helm template.


def test_values_files_are_given_with_f_in_order_and_the_inline_values_last(tmp_path):
    run(tmp_path, OVERRIDES)
    seen = sorted((tmp_path / "seen").iterdir(), key=lambda p: int(p.stem))
    assert [p.read_bytes() for p in seen] == [
        b"image:\n  tag: '2.0'\n",
        b"replicaCount: 3\n",
        b"image:\n  tag: '3.0'\n",
    ]


def test_kube_version_is_given_to_helm_template(tmp_path):
    run(tmp_path, OVERRIDES)
    assert "--kube-version=1.31.0" in arguments(tmp_path)


def test_each_api_version_is_given_to_helm_template(tmp_path):
    run(tmp_path, OVERRIDES)
    given = [a for a in arguments(tmp_path) if a.startswith("--api-versions")]
    assert given == ["--api-versions=monitoring.coreos.com/v1", "--api-versions=policy/v1/PodDisruptionBudget"]


def test_no_values_no_extra_arguments(tmp_path):
    run(tmp_path, ChartValues())
    assert not any(a == "-f" or a.startswith(("--kube-version", "--api-versions")) for a in arguments(tmp_path))


def test_values_never_reach_helm_as_set_arguments(tmp_path):
    run(tmp_path, OVERRIDES)
    assert not any(a.startswith("--set") for a in arguments(tmp_path))


# The values walk reads the merged values.


def test_an_image_overridden_in_the_inline_values_is_found(tmp_path):
    found = run(
        tmp_path,
        ChartValues(inline=b"image:\n  tag: '7.0'\n"),
        chart_values="image:\n  repository: ghcr.io/acme/app\n  tag: '1.0'\n",
    )
    assert list(found) == ["ghcr.io/acme/app:7.0"]
    assert found["ghcr.io/acme/app:7.0"].how == "values: .image (with the MirrorSet's values)"


def test_only_images_the_mirrorset_values_touch_say_so(tmp_path):
    found = run(
        tmp_path,
        ChartValues(inline=b"app:\n  image: {tag: '7.0'}\nworker: {replicas: 2}\n"),
        chart_values="app:\n  image: {repository: acme/app, tag: '1.0'}\nworker:\n  image: acme/worker:2.0\n",
    )
    assert found["docker.io/acme/app:7.0"].how == "values: .app.image (with the MirrorSet's values)"
    assert found["docker.io/acme/worker:2.0"].how == "values: .worker.image"


def test_values_files_and_inline_values_each_mark_what_they_set(tmp_path):
    values = ChartValues(files=(("a.yaml", b"app:\n  image: {tag: '2.0'}\n"),), inline=b"app:\n  replicas: 2\n")
    found = run(tmp_path, values, chart_values="app:\n  image: {repository: acme/app, tag: '1.0'}\n")
    assert found["docker.io/acme/app:2.0"].how == "values: .app.image (with the MirrorSet's values)"


def test_a_vendored_sub_chart_image_the_values_override_says_so(tmp_path):
    sub = tgz(
        {"Chart.yaml": chart_yaml("redis", None), "values.yaml": "image: {repository: redis, tag: '7.0'}\n"},
        top="redis",
    )
    data = tgz({"Chart.yaml": chart_yaml(app_version=None), "charts/redis.tgz": sub})
    chart = read_chart(data, where="demo.tgz")
    (found,) = discover_images(chart, values=ChartValues(inline=b"redis:\n  image: {tag: '8.0'}\n"))
    assert (found.reference, found.how) == (
        "docker.io/library/redis:8.0",
        "values: .image (with the MirrorSet's values)",
    )


def test_inline_values_win_over_values_files(tmp_path):
    found = run(tmp_path, OVERRIDES, chart_values="image:\n  repository: ghcr.io/acme/app\n  tag: '1.0'\n")
    assert list(found) == ["ghcr.io/acme/app:3.0"]


def test_a_later_values_file_wins_over_an_earlier_one(tmp_path):
    values = ChartValues(files=(("a.yaml", b"image: {tag: '2.0'}\n"), ("b.yaml", b"image: {tag: '2.1'}\n")))
    found = run(tmp_path, values, chart_values="image:\n  repository: ghcr.io/acme/app\n  tag: '1.0'\n")
    assert list(found) == ["ghcr.io/acme/app:2.1"]


def test_an_image_only_the_values_name_is_found(tmp_path):
    found = run(tmp_path, ChartValues(inline=b"sidecar:\n  image: busybox:1.36\n"))
    assert list(found) == ["docker.io/library/busybox:1.36"]


def test_without_mirrorset_values_the_how_is_unchanged(tmp_path):
    found = run(tmp_path, ChartValues(), chart_values="image:\n  repository: ghcr.io/acme/app\n  tag: '1.0'\n")
    assert found["ghcr.io/acme/app:1.0"].how == "values: .image"


# Images in containers' env values are guesses.

ENV_RENDERED = """\
# Source: demo/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
spec:
  template:
    spec:
      containers:
        - name: operator
          image: ghcr.io/acme/operator:1.0
          env:
            - {name: RELOADER_IMAGE, value: "quay.io/acme/reloader:v0.7.0"}
            - {name: SIDECAR, value: "ghcr.io/acme/sidecar@sha256:CCC"}
            - {name: LOG_LEVEL, value: info}
            - {name: LONG_IMAGE, value: "acme/XXX:1"}
            - {name: UPSTREAM, value: "localhost:8080"}
            - {name: URL, value: "https://example.com/x:1"}
            - {name: SELF, value: "ghcr.io/acme/operator:1.0"}
            - {name: FROM_SECRET, valueFrom: {secretKeyRef: {name: s, key: k}}}
      initContainers:
        - name: init
          image: busybox:1.36
          env:
            - {name: HELPER_IMAGE, value: "helper:2.1"}
""".replace("CCC", "c" * 64).replace("XXX", "x" * 600)


def test_an_image_in_an_env_value_is_a_guess(tmp_path):
    found = run(tmp_path, ChartValues(), ENV_RENDERED)["quay.io/acme/reloader:v0.7.0"]
    assert found.guessed
    assert found.how == "helm template: Deployment/demo containers operator env RELOADER_IMAGE (a guess: an env value)"


def test_a_digest_pinned_env_value_is_a_guess(tmp_path):
    assert run(tmp_path, ChartValues(), ENV_RENDERED)[f"ghcr.io/acme/sidecar@sha256:{'c' * 64}"].guessed


def test_a_short_env_value_is_a_guess_only_under_an_image_name(tmp_path):
    found = run(tmp_path, ChartValues(), ENV_RENDERED)
    assert found["docker.io/library/helper:2.1"].how.endswith(
        "initContainers init env HELPER_IMAGE (a guess: an env value)"
    )
    assert not any("localhost" in reference for reference in found)


def test_env_values_that_are_not_images_are_not_found(tmp_path):
    found = run(tmp_path, ChartValues(), ENV_RENDERED)
    assert set(found) == {
        "ghcr.io/acme/operator:1.0",
        "docker.io/library/busybox:1.36",
        "quay.io/acme/reloader:v0.7.0",
        f"ghcr.io/acme/sidecar@sha256:{'c' * 64}",
        "docker.io/library/helper:2.1",
    }


def test_an_env_value_that_is_also_a_container_image_is_certain(tmp_path):
    found = run(tmp_path, ChartValues(), ENV_RENDERED)["ghcr.io/acme/operator:1.0"]
    assert not found.guessed and "env SELF" in found.how
