"""The vectors benchmark's server is the harness's PostgreSQL (`harness.emulator.services.start_postgres`, not a copy of
it), started with the benchmark's own server settings (`SERVER_SETTINGS`) over the harness's defaults."""

from __future__ import annotations

from pathlib import Path

from harness.emulator import services


def test_start_postgres_applies_settings_over_its_defaults(tmp_path: Path) -> None:
    pg = services.start_postgres(tmp_path, settings={"shared_buffers": "32MB", "work_mem": "7MB"})
    try:
        conn = pg.connect()
        try:
            with conn.cursor() as cur:
                shown = {}
                for name in ("shared_buffers", "work_mem", "max_connections"):
                    cur.execute(f"SHOW {name}")
                    shown[name] = cur.fetchone()[0]
        finally:
            conn.close()
    finally:
        services.stop_postgres(pg)

    assert shown == {"shared_buffers": "32MB", "work_mem": "7MB", "max_connections": "100"}

