"""recsys.vectordb is a package: its public names stay reachable as `vectordb.<name>`, and the Lambda deployment zip
carries every one of its modules and imports from the zip alone."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

from recsys import vectordb

from components import packaging

PACKAGE_DIR = packaging.LAMBDA_SRC / "recsys" / "vectordb"


def test_every_exported_name_is_the_object_its_module_defines() -> None:
    from recsys.vectordb import exact, load, queries

    assert sorted(vectordb.__all__) == sorted(set(vectordb.__all__)), "no name exported twice"
    missing = [name for name in vectordb.__all__ if not hasattr(vectordb, name)]
    assert missing == []
    # The callers' names are the objects the modules use, not copies: patching a module patches what runs.
    assert vectordb.items_for_users is queries.items_for_users
    assert vectordb.load_embeddings is load.load_embeddings
    assert vectordb.item_catalogue is exact.item_catalogue
    assert vectordb.EXACT_SEARCH_MAX_ITEMS == exact.EXACT_SEARCH_MAX_ITEMS == 200_000


def test_the_function_zip_holds_every_vectordb_module_and_imports_from_the_zip_alone(tmp_path: Path) -> None:
    archive = zipfile.ZipFile(io.BytesIO(packaging.function_zip_bytes("loader")))
    in_zip = {name for name in archive.namelist() if name.startswith("recsys/vectordb/")}
    modules = {f"recsys/vectordb/{path.name}" for path in PACKAGE_DIR.glob("*.py")}
    assert "recsys/vectordb/__init__.py" in modules and "recsys/vectordb/load.py" in modules
    assert in_zip == modules, "only the package's sources, no caches"
    assert "recsys/vectordb.py" not in archive.namelist()

    unzipped = tmp_path / "function"
    archive.extractall(unzipped)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from recsys import vectordb\n"
        "import loader\n"
        "print(vectordb.__file__)\n"
        "print(loader.__file__)\n"
        "print(sorted(name for name in vectordb.__all__ if not hasattr(vectordb, name)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(unzipped)], capture_output=True, text=True,
                            check=False, timeout=120)

    assert result.returncode == 0, result.stderr
    package_file, loader_file, missing = result.stdout.splitlines()
    assert package_file == str(unzipped / "recsys" / "vectordb" / "__init__.py")
    assert loader_file == str(unzipped / "loader.py")
    assert missing == "[]"
