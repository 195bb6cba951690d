"""System packages the local stack needs, installed with apt when missing (standard library only: runs before the venv).

`python3 -m harness.emulator.bootstrap system` exits 0 when everything is present, installs what is missing when it
runs as root
on a Debian-like system, and otherwise stops with the exact command to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SystemRequirement:
    package: str
    why: str
    present: bool


def mariadb_server_binary() -> str | None:
    """The MariaDB server binary, wherever Debian puts it (it is not on a normal user's PATH)."""
    for name in ("mariadbd", "mysqld"):
        found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
        if found:
            return found
    return None


def mariadb_jdbc_jar() -> Path | None:
    for candidate in ("/usr/share/java/mariadb-java-client.jar",):
        if Path(candidate).exists():
            return Path(candidate)
    return None


def requirements() -> list[SystemRequirement]:
    return [
        SystemRequirement("mariadb-server", "the local MySQL-compatible source database",
                          mariadb_server_binary() is not None),
        SystemRequirement("mariadb-client", "the mysql client that `harness env` prepares",
                          shutil.which("mariadb") is not None),
        SystemRequirement("libmariadb-java", "Spark's JDBC driver for the Glue script", mariadb_jdbc_jar() is not None),
        SystemRequirement("openjdk-17-jre-headless", "Java for local Spark", shutil.which("java") is not None),
    ]


def ensure_system_packages() -> int:
    missing = [r for r in requirements() if not r.present]
    if not missing:
        return 0
    names = " ".join(r.package for r in missing)
    can_apt = os.geteuid() == 0 and shutil.which("apt-get") is not None
    if not can_apt:
        print("The local stack needs these system packages:", file=sys.stderr)
        for r in missing:
            print(f"  {r.package:26} {r.why}", file=sys.stderr)
        print(f"Install them, then run the command again:\n  sudo apt-get install -y {names}", file=sys.stderr)
        return 1
    print(f"==> installing system packages with apt: {names}", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *names.split()], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    still = [r.package for r in requirements() if not r.present]
    if still:
        print(f"apt-get finished but these are still missing: {' '.join(still)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["system"]:
        print("usage: python3 -m harness.emulator.bootstrap system", file=sys.stderr)
        sys.exit(2)
    sys.exit(ensure_system_packages())
