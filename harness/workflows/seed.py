"""Seeding the source database: generate the classicmodels-shaped rows and swap them into MySQL/MariaDB.

The rows come from `lambda_src/recsys/classicmodels/` (the same generator the `source-seeder` Lambda runs); this
module only decides where they go and shows progress. The target is the stack's source: the program's source database
(the `source_db_*` outputs, with its master user), the stack's own MariaDB before anything is deployed, or the external
MySQL given to `up --source-url`, which is only overwritten when asked explicitly.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.emulator import services as svc
from harness.emulator import state as st

LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"
if str(LAMBDA_SRC) not in sys.path:
    # `recsys` is the Lambda functions' shared package; the harness imports it the way the Lambda runtime does.
    sys.path.insert(0, str(LAMBDA_SRC))

from recsys import classicmodels  # noqa: E402

DEFAULT_DATABASE = "classicmodels"


class SeedError(RuntimeError):
    """A user-facing seeding problem: printed as one message, nothing was changed."""


@dataclass(frozen=True)
class SeedTarget:
    host: str
    port: int
    user: str
    password: str
    database: str
    external: bool

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database}" + (" (external)" if self.external else "")


@dataclass(frozen=True)
class SeedSummary:
    target: str
    scale: int
    seed: int
    counts: dict[str, int]
    seconds: float


def resolve_target(state: st.State, *, allow_external: bool = False) -> SeedTarget:
    """Where `seed` writes, from the recorded state (pure: no connection is made)."""
    source = state.get("source") or {}
    if source.get("external"):
        if not allow_external:
            raise SeedError(f"the stack's source is an external MySQL ({source.get('username')}@{source.get('host')}:"
                            f"{source.get('port')}/{source.get('database')}); seeding would replace its classicmodels "
                            "tables. Pass --overwrite-external to do that on purpose.")
        return SeedTarget(host=str(source["host"]), port=int(source["port"]), user=str(source["username"]),
                          password=str(source["password"]), database=str(source["database"]), external=True)
    if not state.get("services"):
        raise SeedError("the local stack is not up: run `python -m harness up` first")
    outputs: dict[str, Any] = state.get("outputs") or {}

    def output(name: str) -> Any:
        entry = outputs.get(name)
        return entry.get("value") if isinstance(entry, dict) else None

    if all(output(n) not in (None, "") for n in ("source_db_host", "source_db_port", "source_db_username",
                                                  "source_db_password")):
        # The program's source database (the engine runs it as its own local server): its master user.
        return SeedTarget(host=str(output("source_db_host")), port=int(output("source_db_port")),
                          user=str(output("source_db_username")), password=str(output("source_db_password")),
                          database=str(output("source_db_name") or DEFAULT_DATABASE), external=False)
    # Before the engine has deployed anything: the stack's own MariaDB, through its admin user.
    maria = svc.RunningServices.from_dict(state["services"]).mariadb
    return SeedTarget(host=maria.host, port=maria.port, user=maria.user, password=maria.password,
                      database=DEFAULT_DATABASE, external=False)


def seed_target(target: SeedTarget, *, scale: int = 1, seed: int = classicmodels.DEFAULT_SEED,
                progress: classicmodels.Progress | None = None,
                on_generated: Callable[[classicmodels.Dataset], None] | None = None) -> SeedSummary:
    try:
        classicmodels.validate(scale, seed)
    except ValueError as err:
        raise SeedError(str(err)) from None
    import pymysql

    started = time.monotonic()
    dataset = classicmodels.generate(scale, seed)
    if on_generated is not None:
        on_generated(dataset)
    try:
        conn = pymysql.connect(host=target.host, port=target.port, user=target.user, password=target.password,
                               connect_timeout=10, autocommit=False, charset="utf8mb4")
    except pymysql.MySQLError as err:
        raise SeedError(f"cannot connect to {target.describe()}: {err.args[-1] if err.args else err}") from None
    try:
        counts = classicmodels.load(conn, target.database, dataset, progress=progress)
    except pymysql.MySQLError as err:
        raise SeedError(f"seeding {target.describe()} failed, its previous tables are unchanged: "
                        f"{err.args[-1] if err.args else err}") from None
    finally:
        conn.close()
    return SeedSummary(target=target.describe(), scale=scale, seed=seed,
                       counts={table: n for table, n in counts.items()}, seconds=time.monotonic() - started)


def seed_source(state_dir: Path, *, scale: int = 1, seed: int = classicmodels.DEFAULT_SEED,
                allow_external: bool = False, progress: classicmodels.Progress | None = None) -> SeedSummary:
    """Seed the stack's source database (the signature `harness demo` calls, see docs/ARCHITECTURE.md)."""
    target = resolve_target(st.load_state(state_dir), allow_external=allow_external)
    summary = seed_target(target, scale=scale, seed=seed, progress=progress)
    st.update_state(state_dir, lambda s: s.update(seed={"scale": scale, "seed": seed, "counts": summary.counts,
                                                         "target": summary.target}))
    return summary
