"""Seeding a stack's source database through the stack's own seeder function, as on AWS, where the database is private.

`seed_stack(handle)` invokes the function the `source_seeder_function_name` output names (the program deploys it when
it creates the source database) with the event docs/ARCHITECTURE.md describes: the generated classicmodels-shaped data
for a scale and seed, or, with `classicmodels_dump`, the public sample's own dump (`mysqlsampledatabase.sql`), which is
checked here first, then uploaded to the artifacts bucket (`seed/mysqlsampledatabase.sql`) for the function to read.
The same code seeds the local stack (the emulator's Lambda API) and one on AWS (the user's credentials); the function
swaps the tables in all at once, so a failed seed leaves the previous data in place.

A stack that attaches to a MySQL it did not create (`harness up --source-url`, config `sourceDbHost`) has no seeder:
its data is the user's, and `seed_stack` only overwrites it when asked (`overwrite_external`), loading straight into
the `source_db_*` outputs' database from here (`seed_target`, also what the benchmarks use for a database of their own).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys import classicmodels
from recsys.classicmodels.dump import check_size

from harness.workflows.handle import HandleError, StackHandle
from harness.workflows.invoke import InvokeError, invoke_function

DEFAULT_SEED = classicmodels.DEFAULT_SEED
DEFAULT_DATABASE = "classicmodels"
SEEDER_OUTPUT = "source_seeder_function_name"
DUMP_KEY = "seed/mysqlsampledatabase.sql"

Progress = Callable[[str], None]


class SeedError(RuntimeError):
    """A user-facing seeding problem: one line, saying what to do; the source database was not changed."""


@dataclass(frozen=True)
class SeedSummary:
    target: str  # where the rows went, for people ("classicmodels through de-c1w4-source-seeder-lambda")
    scale: int
    seed: int
    counts: dict[str, int]
    seconds: float
    classicmodels_dump: str | None = None  # the dump's S3 location (or local path), when the rows are the dump's

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "scale": self.scale, "seed": self.seed, "counts": self.counts,
                "seconds": round(self.seconds, 3), "classicmodels_dump": self.classicmodels_dump}


def read_dump(path: Path) -> bytes:
    """The dump's bytes, checked to be the classicmodels dump (SeedError names the file and what was expected)."""
    try:
        check_size(path.stat().st_size, str(path))
        data = path.read_bytes()
        classicmodels.parse_dump(data, source=str(path))
    except FileNotFoundError:
        raise SeedError(f"{path}: no such file; download mysqlsampledatabase.sql from mysqltutorial.org") from None
    except IsADirectoryError:
        raise SeedError(f"{path} is a directory: pass the mysqlsampledatabase.sql file inside it") from None
    except OSError as err:
        raise SeedError(f"cannot read {path}: {err.strerror or err}") from None
    except classicmodels.DumpError as err:
        raise SeedError(str(err)) from None
    return data


def seed_stack(handle: StackHandle, *, scale: int = 1, seed: int = DEFAULT_SEED,
               classicmodels_dump: Path | None = None, on_progress: Progress | None = None,
               overwrite_external: bool = False) -> SeedSummary:
    """Seed the stack's source database through its seeder function; `on_progress` hears each step in a few words."""
    say = on_progress or (lambda message: None)
    started = time.monotonic()
    try:
        classicmodels.validate(scale, seed)
    except ValueError as err:
        raise SeedError(str(err)) from None
    if classicmodels_dump is not None and scale != 1:
        raise SeedError(f"scale {scale} does not apply to the classicmodels dump: it has the sample's own size")
    dump = read_dump(classicmodels_dump) if classicmodels_dump is not None else None
    function = handle.optional_output(SEEDER_OUTPUT)
    if not function:
        if overwrite_external:
            return _seed_external(handle, scale=scale, seed=seed, dump=dump, dump_path=classicmodels_dump, say=say,
                                  started=started)
        raise SeedError(f"the stack {handle.name} has no seeder function (no `{SEEDER_OUTPUT}` output): its source is "
                        "a MySQL the program attaches to (`harness up --source-url`, config sourceDbHost), which holds "
                        "your own data; pass --overwrite-external to replace its classicmodels tables from here")
    event: dict[str, Any] = {"action": "seed", "seed": seed}
    location = None
    if dump is not None:
        bucket = _output(handle, "artifacts_bucket_id")
        location = f"s3://{bucket}/{DUMP_KEY}"
        say(f"uploading {classicmodels_dump} to {location}")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            handle.client("s3").put_object(Bucket=bucket, Key=DUMP_KEY, Body=dump)
        except (BotoCoreError, ClientError) as err:
            raise SeedError(f"cannot upload the dump to {location}: {err}") from None
        event["classicmodels_dump"] = {"bucket": bucket, "key": DUMP_KEY}
    else:
        event["scale"] = scale
    say(f"invoking {function} ({'the classicmodels dump' if dump is not None else f'scale {scale}'}, seed {seed})")
    result = _invoke(handle, str(function), event)
    counts = result.get("counts")
    if not isinstance(counts, dict):
        raise SeedError(f"the seeder function {function} answered without counts: {json.dumps(result)[:200]}")
    return SeedSummary(target=f"{result.get('database') or DEFAULT_DATABASE} through {function}", scale=scale,
                       seed=seed, counts={str(k): int(v) for k, v in counts.items()},
                       seconds=time.monotonic() - started, classicmodels_dump=location)


def _output(handle: StackHandle, name: str) -> str:
    try:
        return str(handle.output(name))
    except HandleError as err:
        raise SeedError(str(err)) from None


def _invoke(handle: StackHandle, function: str, event: dict[str, Any]) -> dict[str, Any]:
    try:
        answer = invoke_function(handle, function, json.dumps(event).encode("utf-8"))
    except InvokeError as err:
        raise SeedError(f"the seeder function did not run ({err}); the source database is unchanged") from None
    parsed = answer.payload_json()
    if answer.function_error:
        failure = parsed if isinstance(parsed, dict) else {}
        kind = f"{failure['errorType']}: " if failure.get("errorType") else ""
        message = failure.get("errorMessage") or answer.payload.decode("utf-8", errors="replace")[:500]
        raise SeedError(f"the seeder function {function} failed, the source database is unchanged: {kind}{message}")
    if not isinstance(parsed, dict):
        raise SeedError(f"the seeder function {function} answered something other than a JSON object: "
                        f"{answer.payload[:200]!r}")
    return parsed


# --- loading straight into a MySQL reachable from here ------------------------------------------------------------
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


def _seed_external(handle: StackHandle, *, scale: int, seed: int, dump: bytes | None, dump_path: Path | None,
                   say: Progress, started: float) -> SeedSummary:
    try:
        settings = handle.source_db_settings()
    except HandleError as err:
        raise SeedError(str(err)) from None
    target = SeedTarget(host=settings["host"], port=settings["port"], user=settings["user"],
                        password=settings["password"], database=settings["database"], external=True)
    say(f"loading into {target.describe()}")
    dataset = (classicmodels.dataset_from_dump(dump, seed, source=str(dump_path)) if dump is not None
               else classicmodels.generate(scale, seed))
    summary = _load(target, dataset)
    return SeedSummary(target=summary.target, scale=scale, seed=seed, counts=summary.counts,
                       seconds=time.monotonic() - started, classicmodels_dump=str(dump_path) if dump_path else None)


def seed_target(target: SeedTarget, *, scale: int = 1, seed: int = DEFAULT_SEED,
                progress: classicmodels.Progress | None = None,
                on_generated: Callable[[classicmodels.Dataset], None] | None = None) -> SeedSummary:
    """Generate the data for (scale, seed) and swap it into `target`, a MySQL/MariaDB reachable from here (the
    benchmarks' own databases; a stack's source goes through `seed_stack`)."""
    try:
        classicmodels.validate(scale, seed)
    except ValueError as err:
        raise SeedError(str(err)) from None
    started = time.monotonic()
    dataset = classicmodels.generate(scale, seed)
    if on_generated is not None:
        on_generated(dataset)
    summary = _load(target, dataset, progress=progress)
    return SeedSummary(target=summary.target, scale=scale, seed=seed, counts=summary.counts,
                       seconds=time.monotonic() - started)


def _load(target: SeedTarget, dataset: classicmodels.Dataset, *,
          progress: classicmodels.Progress | None = None) -> SeedSummary:
    import pymysql

    started = time.monotonic()
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
    return SeedSummary(target=target.describe(), scale=dataset.scale, seed=dataset.seed,
                       counts={table: n for table, n in counts.items()}, seconds=time.monotonic() - started)
