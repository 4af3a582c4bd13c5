#!/usr/bin/env python3
"""A counting TCP proxy for scripts/bench.sh.

Usage: bench_proxy.py OUT.json PROTOCOL LISTEN:UPSTREAM [LISTEN:UPSTREAM ...]

Passes every byte between the app and its backend on 127.0.0.1 and keeps
OUT.json up to date with two counts:

- round_trips: the times a client connection sent data after it had
  received some (or first): with one client sending requests one after
  another, the request/answer exchanges with the backend, however many
  commands each pipelines;
- commands: for PROTOCOL memcached, the command lines passed on (the data
  block of a set follows its `ms` line and is not counted); 0 otherwise.
"""

import asyncio
import json
import os
import sys

out, protocol, routes = sys.argv[1], sys.argv[2], sys.argv[3:]
counts = {"round_trips": 0, "commands": 0}


def save():
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(counts, f)
    os.replace(tmp, out)


class Connection:
    """Which way data last went on one client connection."""

    def __init__(self):
        self.answered = True

    def sent(self):
        if self.answered:
            counts["round_trips"] += 1
            self.answered = False

    def received(self):
        self.answered = True


async def client_to_server(conn, reader, writer):
    while True:
        if protocol == "memcached":
            line = await reader.readline()
            if not line:
                break
            conn.sent()
            counts["commands"] += 1
            writer.write(line)
            if line.startswith(b"ms "):
                writer.write(await reader.readexactly(int(line.split()[2]) + 2))
        else:
            data = await reader.read(65536)
            if not data:
                break
            conn.sent()
            writer.write(data)
        await writer.drain()
        save()
    writer.close()


async def server_to_client(conn, reader, writer):
    while data := await reader.read(65536):
        conn.received()
        writer.write(data)
        await writer.drain()
    writer.close()


async def main():
    servers = []
    for route in routes:
        listen, upstream = (int(p) for p in route.split(":"))

        async def handle(cr, cw, upstream=upstream):
            ur, uw = await asyncio.open_connection("127.0.0.1", upstream)
            conn = Connection()
            await asyncio.gather(client_to_server(conn, cr, uw), server_to_client(conn, ur, cw),
                                 return_exceptions=True)

        servers.append(await asyncio.start_server(handle, "127.0.0.1", listen))
    save()
    await asyncio.gather(*(s.serve_forever() for s in servers))


asyncio.run(main())
