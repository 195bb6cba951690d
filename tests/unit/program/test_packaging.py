"""Lambda packages: reproducible per-function zips; a dependency layer built by pip for the Lambda platform, cached."""

from __future__ import annotations

import io
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from components import packaging


def make_source(root: Path) -> Path:
    (root / "recsys").mkdir(parents=True)
    (root / "recsys" / "__init__.py").write_text("")
    (root / "recsys" / "model.py").write_text("WEIGHTS = 1\n")
    (root / "recsys" / "__pycache__").mkdir()
    (root / "recsys" / "__pycache__" / "model.cpython-312.pyc").write_bytes(b"\0")
    (root / "loader.py").write_text("def handler(event, context):\n    return {}\n")
    (root / "inference.py").write_text("def handler(event, context):\n    return {}\n")
    return root


def test_a_function_zip_holds_its_handler_and_the_shared_package_only(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    names = zipfile.ZipFile(io.BytesIO(packaging.function_zip_bytes("loader", source))).namelist()
    assert names == ["loader.py", "recsys/__init__.py", "recsys/model.py"]


def test_the_same_sources_give_the_same_bytes_and_hash_whenever_they_are_built(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    first = packaging.function_package("loader", source, tmp_path / "out1")
    (source / "loader.py").touch()  # a newer mtime must not change the package
    second = packaging.function_package("loader", source, tmp_path / "out2")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256_base64 == second.sha256_base64


def test_a_changed_source_changes_the_hash(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    before = packaging.function_package("loader", source, tmp_path / "out")
    (source / "recsys" / "model.py").write_text("WEIGHTS = 2\n")
    after = packaging.function_package("loader", source, tmp_path / "out")
    assert before.sha256_base64 != after.sha256_base64


def test_a_missing_handler_module_is_a_clear_error(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    with pytest.raises(packaging.PackagingError, match=r"Lambda handler module .*producer\.py does not exist"):
        packaging.function_package("producer", source, tmp_path / "out")


@pytest.mark.parametrize(("architecture", "machine"), [("x86_64", "x86_64"), ("arm64", "aarch64")])
def test_pip_fetches_only_lambda_platform_wheels_for_python_312(architecture: str, machine: str) -> None:
    command = packaging.pip_command(Path("requirements.txt"), Path("/tmp/target"), architecture)  # type: ignore[arg-type]
    assert "--only-binary=:all:" in command
    assert command[command.index("--python-version") + 1] == "3.12"
    assert command[command.index("--implementation") + 1] == "cp"
    platforms = [command[i + 1] for i, part in enumerate(command) if part == "--platform"]
    assert platforms == [f"manylinux2014_{machine}", f"manylinux_2_28_{machine}"]
    assert command[command.index("--target") + 1] == "/tmp/target"


class FakePip:
    def __init__(self, returncode: int = 0, stderr: str = "") -> None:
        self.calls: list[Sequence[str]] = []
        self.returncode = returncode
        self.stderr = stderr

    def __call__(self, command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(command)
        if self.returncode == 0:
            target = Path(command[command.index("--target") + 1])
            (target / "numpy").mkdir(parents=True)
            (target / "numpy" / "__init__.py").write_text("")
        return subprocess.CompletedProcess(list(command), self.returncode, "", self.stderr)


def test_the_layer_is_built_once_under_python_and_then_served_from_the_cache(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==2.2.6\n")
    pip = FakePip()
    first = packaging.dependency_layer("x86_64", requirements, tmp_path / "build", run_pip=pip)
    second = packaging.dependency_layer("x86_64", requirements, tmp_path / "build", run_pip=pip)
    assert len(pip.calls) == 1
    assert first == second
    assert zipfile.ZipFile(first.path).namelist() == ["python/numpy/__init__.py"]


def test_another_architecture_or_pin_is_another_cache_entry(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==2.2.6\n")
    x86 = packaging.layer_cache_path(requirements, "x86_64", tmp_path)
    arm = packaging.layer_cache_path(requirements, "arm64", tmp_path)
    requirements.write_text("numpy==2.2.5\n")
    repinned = packaging.layer_cache_path(requirements, "x86_64", tmp_path)
    assert len({x86, arm, repinned}) == 3


def test_a_pip_failure_says_what_failed_and_leaves_no_half_built_layer(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==2.2.6\n")
    pip = FakePip(returncode=1, stderr="ERROR: Could not find a version that satisfies the requirement numpy==2.2.6")
    with pytest.raises(packaging.PackagingError) as raised:
        packaging.dependency_layer("arm64", requirements, tmp_path / "build", run_pip=pip)
    message = str(raised.value)
    assert "pip could not fetch the Lambda dependencies" in message
    assert "arm64 wheels for Python 3.12 (exit 1)" in message
    assert "Could not find a version that satisfies the requirement numpy==2.2.6" in message
    assert not packaging.layer_cache_path(requirements, "arm64", tmp_path / "build").exists()
