"""A steady background load on ``plate.sightings``, produced straight to Kafka in a process of its own.

The read → SMS benchmark (c2) measures one parking lot posting through ``seizewatch ingest`` while the
worker carries half the load it can take. One ingest process on this machine takes 5–6k reads/s, so the
rest of that load comes from here: the reads of a province's other devices, which in a deployment arrive
through many ingest processes on their own hosts (they scale out; the worker's share is what is measured).

The records (key, canonical sighting) are made by the harness and read from a file; this process only
sends them, cycling through the file, at a fixed rate (open loop, 100 ticks a second), a batch per
partition per tick through aiokafka's ``create_batch``/``send_batch``: a few µs per record, so the
load generator stays a small share of a core. Partitions are those the default partitioner gives the
record keys, as for the connectors' records. When done it prints one JSON line: records sent and the
achieved rate.

``python -m benchmarks.load --bootstrap HOST:PORT --topic TOPIC --records FILE --rate R --seconds S``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
from collections.abc import Iterable
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

TICK_S = 0.01
_LENGTHS = struct.Struct(">II")


def write_records(path: Path, records: Iterable[tuple[bytes, bytes]]) -> int:
    """Write (key, value) records for :func:`read_records`; return how many."""
    count = 0
    with path.open("wb") as out:
        for key, value in records:
            out.write(_LENGTHS.pack(len(key), len(value)) + key + value)
            count += 1
    return count


def read_records(path: Path) -> list[tuple[bytes, bytes]]:
    data = path.read_bytes()
    records, at = [], 0
    while at < len(data):
        k, v = _LENGTHS.unpack_from(data, at)
        at += _LENGTHS.size
        records.append((data[at : at + k], data[at + k : at + k + v]))
        at += k + v
    return records


async def run(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], rate: float, seconds: float
) -> dict[str, float]:
    """Send ``records`` (cycling) to ``topic`` at ``rate`` per second for ``seconds``; the figures."""
    if not records:
        raise ValueError("no records to send")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5, max_batch_size=1 << 20)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        choose = DefaultPartitioner()
        keyed = [(key, value, choose(key, partitions, partitions)) for key, value in records]
        pending: set[asyncio.Future[object]] = set()
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent, i = 0, 0
        while (elapsed := loop.time() - start) < seconds:
            due = int(rate * elapsed) - sent
            batches: dict[int, BatchBuilder] = {}
            for _ in range(due):
                key, value, partition = keyed[i]
                i = (i + 1) % len(keyed)
                batch = batches.get(partition)
                if batch is None:
                    batch = batches[partition] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start anew
                    pending.add(await producer.send_batch(batch, topic, partition=partition))
                    batch = batches[partition] = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            for partition, batch in batches.items():
                pending.add(await producer.send_batch(batch, topic, partition=partition))
            sent += max(due, 0)
            done = {f for f in pending if f.done()}
            for f in done:
                f.result()  # a failed send fails the run: the load asked for was not offered
            pending -= done
            await asyncio.sleep(TICK_S)
        await asyncio.gather(*pending)
        seconds_run = loop.time() - start
    finally:
        await producer.stop()
    return {"sent": sent, "seconds": round(seconds_run, 3), "rate": round(sent / seconds_run, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", type=Path, required=True, help="file written by write_records")
    parser.add_argument("--rate", type=float, required=True, help="records per second")
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    figures = asyncio.run(
        run(args.bootstrap, args.topic, read_records(args.records), args.rate, args.seconds)
    )
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
