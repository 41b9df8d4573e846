"""The OCR kinds end to end, in a worker configured to page on them (they make no hit by default)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from connectors.producer import SightingPublisher
from tests.conftest import Isolated, Worker, eventually, start_worker, stop_process
from tests.integration.test_pipeline import add, hit_rows, read

pytestmark = pytest.mark.integration

ALL_KINDS = "exact,province,ocr,ocr_province"


@pytest.fixture(scope="module")
async def ocr_worker(isolated: Isolated, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    env = {**isolated.env, "SEIZEWATCH_MATCH_HIT_KINDS": ALL_KINDS}
    w = start_worker(env, tmp_path_factory.mktemp("worker") / "worker.log")
    try:
        await w.wait_metric("seizewatch_watchlist_caught_up", lambda v: v == 1, within=90)
        yield w
    finally:
        stop_process(w)


async def test_ocr_reads_hit_with_their_kind_and_score(isolated: Isolated, ocr_worker: Worker) -> None:
    conn = await asyncpg.connect(isolated.settings.postgres.dsn.get_secret_value())
    try:
        ocr_id = await add(conn, "浙JD80123")
        both_id = await add(conn, "沪A12345")
        await ocr_worker.wait_metric("seizewatch_watchlist_entries", lambda v: v == 2)
        async with SightingPublisher(isolated.settings.kafka, role="test") as publisher:
            await publisher.publish(read("浙JD8O123"))  # O read for 0
            await publisher.publish(read("AL2345"))  # the province not read, and 1 read as L
        ocr = await eventually(lambda: hit_rows(conn, ocr_id), lambda rows: len(rows) == 1)
        ocr_province = await eventually(lambda: hit_rows(conn, both_id), lambda rows: len(rows) == 1)
        assert (ocr[0]["match_kind"], ocr[0]["score"]) == ("ocr", pytest.approx(0.8))
        assert ocr_province[0]["match_kind"] == "ocr_province"
        assert ocr_province[0]["score"] == pytest.approx(0.7)
        skipped = (await ocr_worker.metrics()).get("seizewatch_match_fuzzy_only_skipped_total")
        assert skipped == 0  # nothing skipped when the OCR kinds page
    finally:
        await conn.close()
