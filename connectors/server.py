"""The connectors' app with every feed's routes: what `seizewatch ingest` serves."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from connectors import gat1400_routes, isapi_routes, parking_routes, traffic_routes
from connectors.http import create_app
from connectors.settings import IngestSettings
from streams.settings import KafkaSettings, PostgresSettings


def build_app(
    kafka: KafkaSettings,
    postgres: PostgresSettings,
    settings: IngestSettings,
    *,
    on_loop_failure: Callable[[str], None] | None = None,
) -> FastAPI:
    """Every feed's routes; ``on_loop_failure`` is told when the process cannot go on (see create_app)."""
    return create_app(
        kafka,
        postgres,
        settings,
        routes=[
            parking_routes.add_routes,
            gat1400_routes.add_routes,
            isapi_routes.add_routes,
            traffic_routes.add_routes,
        ],
        extras=gat1400_routes.extras,
        on_loop_failure=on_loop_failure,
    )
