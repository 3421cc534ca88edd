"""The ceiling app of bench/ceilings.py: FastAPI (pydantic 2, uvicorn with
uvloop and httptools, one worker) validating an EVSE status PATCH body and
answering an OCPI envelope; with ``--kafka`` and ``--topic``, after one
acknowledged Kafka write (acks=all, idempotent) of an event-sized record.

    python -m bench.ceiling_app --port P [--kafka BOOTSTRAP --topic T]

No ``from __future__ import annotations`` here: FastAPI reads the route's
annotations at definition time.
"""

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import orjson
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from fastapi.responses import Response

from schemas.ocpi.common import format_ocpi_datetime
from schemas.ocpi.locations import EvseStatusPatch

# An event-sized record (~600 bytes, like LocationObjectPatched).
PADDING = "x" * 300


def create(kafka: str | None, topic: str | None) -> FastAPI:
    producer: AIOKafkaProducer | None = None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal producer
        if kafka is not None:
            producer = AIOKafkaProducer(
                bootstrap_servers=kafka, acks="all", enable_idempotence=True, linger_ms=2
            )
            await producer.start()
        try:
            yield
        finally:
            if producer is not None:
                await producer.stop()

    app = FastAPI(lifespan=lifespan)

    @app.patch("/ocpi/emsp/2.2.1/locations/{cc}/{pid}/{location_id}/{evse_uid}")
    async def patch(
        cc: str, pid: str, location_id: str, evse_uid: str, body: EvseStatusPatch
    ) -> Response:
        if producer is not None and topic is not None:
            record = {
                "evse_uid": evse_uid,
                "status": body.status,
                "last_updated": body.last_updated,
                "pad": PADDING,
            }
            key = f"{cc}/{pid}/{location_id}".upper().encode()
            await producer.send_and_wait(topic, orjson.dumps(record), key=key)
        envelope = {"status_code": 1000, "timestamp": format_ocpi_datetime(datetime.now(UTC))}
        return Response(orjson.dumps(envelope), media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kafka", default=None)
    parser.add_argument("--topic", default=None)
    args = parser.parse_args()
    uvicorn.run(
        create(args.kafka, args.topic),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
