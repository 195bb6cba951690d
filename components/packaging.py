"""Lambda deployment packages: one reproducible zip per function and one dependency layer for the Lambda platform.

A function zip holds the shared package `lambda_src/recsys/` plus the function's handler module, with sorted entries and
fixed timestamps, so the same sources always give the same bytes and the same `source_code_hash` (an unchanged function
is not redeployed). The layer is built by pip for the Lambda platform and architecture, never from the build machine's
site-packages, and cached under `.build/layers/` keyed by the requirements' hash and the platform.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi

from components import defaults
from components.config import Architecture

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = PROJECT_ROOT / "lambda_src"
SHARED_PACKAGE = "recsys"
# 1980-01-01 is the earliest timestamp a zip entry can hold.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

PipRunner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class PackagingError(pulumi.RunError):
    """A package could not be built; the message says why and what to do."""


@dataclass(frozen=True)
class PackagedCode:
    path: Path
    # base64(sha256(zip bytes)): the form Lambda reports as CodeSha256 and `source_code_hash` expects.
    sha256_base64: str

    def archive(self) -> pulumi.FileArchive:
        return pulumi.FileArchive(str(self.path))


def build_dir() -> Path:
    return Path(os.environ.get("RECSYS_BUILD_DIR", PROJECT_ROOT / ".build"))


def _deterministic_zip(files: Sequence[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for arcname, content in sorted(files):
            info = zipfile.ZipInfo(arcname, date_time=FIXED_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def _tree_files(root: Path, arc_prefix: str) -> list[tuple[str, bytes]]:
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
            continue
        files.append((f"{arc_prefix}{path.relative_to(root).as_posix()}", path.read_bytes()))
    return files


def _write_once(content: bytes, directory: Path, stem: str) -> PackagedCode:
    digest = hashlib.sha256(content).digest()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}-{digest.hex()[:16]}.zip"
    if not path.exists():
        temporary = path.with_suffix(f".tmp{os.getpid()}")
        temporary.write_bytes(content)
        temporary.replace(path)
    return PackagedCode(path=path, sha256_base64=base64.b64encode(digest).decode())


def function_zip_bytes(handler_module: str, source_dir: Path = LAMBDA_SRC) -> bytes:
    handler_file = source_dir / f"{handler_module}.py"
    if not handler_file.is_file():
        raise PackagingError(f"Lambda handler module {handler_file} does not exist; expected {handler_module}.py in "
                             f"{source_dir} (see docs/ARCHITECTURE.md, Lambda functions)")
    files = [(handler_file.name, handler_file.read_bytes())]
    files += _tree_files(source_dir / SHARED_PACKAGE, f"{SHARED_PACKAGE}/")
    return _deterministic_zip(files)


def function_package(handler_module: str, source_dir: Path = LAMBDA_SRC, out_dir: Path | None = None
                     ) -> PackagedCode:
    content = function_zip_bytes(handler_module, source_dir)
    return _write_once(content, (out_dir or build_dir()) / "functions", handler_module)


def pip_platforms(architecture: Architecture) -> tuple[str, ...]:
    machine = "x86_64" if architecture == "x86_64" else "aarch64"
    # python3.12 Lambdas run on Amazon Linux 2023 (glibc 2.34): manylinux2014 and manylinux_2_28 wheels both load.
    return (f"manylinux2014_{machine}", f"manylinux_2_28_{machine}")


def pip_command(requirements: Path, target: Path, architecture: Architecture) -> list[str]:
    command = ["pip", "install", "--disable-pip-version-check", "--no-input", "--quiet", "--no-compile",
               "--only-binary=:all:", "--implementation", "cp", "--python-version", defaults.LAMBDA_PYTHON_VERSION]
    for platform in pip_platforms(architecture):
        command += ["--platform", platform]
    return command + ["--target", str(target), "-r", str(requirements)]


def layer_cache_key(requirements: Path, architecture: Architecture) -> str:
    material = requirements.read_bytes() + "|".join((*pip_platforms(architecture),
                                                     defaults.LAMBDA_PYTHON_VERSION)).encode()
    return hashlib.sha256(material).hexdigest()[:16]


def layer_cache_path(requirements: Path, architecture: Architecture, out_dir: Path | None = None) -> Path:
    key = layer_cache_key(requirements, architecture)
    return (out_dir or build_dir()) / "layers" / f"{architecture}-{key}" / "layer.zip"


def _run_pip(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, check=False)


def dependency_layer(
    architecture: Architecture,
    requirements: Path = LAMBDA_SRC / "requirements.txt",
    out_dir: Path | None = None,
    run_pip: PipRunner = _run_pip,
) -> PackagedCode:
    """The layer zip (`python/...`) for `requirements`, from the cache or built now by pip."""
    if not requirements.is_file():
        raise PackagingError(f"Lambda requirements file {requirements} does not exist; it pins the functions' "
                             "third-party dependencies (see docs/ARCHITECTURE.md, Lambda functions)")
    cached = layer_cache_path(requirements, architecture, out_dir)
    if cached.is_file():
        content = cached.read_bytes()
        return PackagedCode(cached, base64.b64encode(hashlib.sha256(content).digest()).decode())

    cached.parent.mkdir(parents=True, exist_ok=True)
    pulumi.log.info(f"building the Lambda dependency layer for {architecture} with pip (once; cached in "
                    f"{cached.parent})")
    with tempfile.TemporaryDirectory(dir=cached.parent) as scratch:
        target = Path(scratch) / "python"
        result = run_pip(pip_command(requirements, target, architecture))
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout or "").strip().splitlines()[-15:])
            raise PackagingError(
                f"pip could not fetch the Lambda dependencies in {requirements} as {architecture} wheels for "
                f"Python {defaults.LAMBDA_PYTHON_VERSION} (exit {result.returncode}). Check network access to PyPI and "
                f"that every pinned package publishes a manylinux wheel for that platform. pip said:\n{tail}"
            )
        content = _deterministic_zip(_tree_files(target, "python/"))
        temporary = cached.with_suffix(f".tmp{os.getpid()}")
        temporary.write_bytes(content)
        temporary.replace(cached)
        shutil.rmtree(target, ignore_errors=True)
    return PackagedCode(cached, base64.b64encode(hashlib.sha256(content).digest()).decode())


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
