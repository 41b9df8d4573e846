"""/metrics and /healthz on one port: the worker's HTTP face, served from a thread by the WSGI app."""

from __future__ import annotations

import httpx

from streams import exposition


async def test_healthz_answers_from_the_supervisor_and_every_other_path_the_metrics() -> None:
    state: dict[str, tuple[int, dict[str, str]]] = {"now": (200, {"status": "ok"})}
    server = exposition.serve("127.0.0.1", 0, lambda: state["now"])
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            ok = await client.get("/healthz")
            assert (ok.status_code, ok.json()) == (200, {"status": "ok"})
            assert ok.headers["content-type"] == "application/json"
            state["now"] = (503, {"status": "failed", "failure": "outbox-relay: BrokerRefused()"})
            failed = await client.get("/healthz")
            assert (failed.status_code, failed.json()["failure"]) == (503, "outbox-relay: BrokerRefused()")
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert "python_info" in metrics.text
    finally:
        server.shutdown()
        server.server_close()
