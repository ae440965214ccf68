"""The WebSocket benchmark's origin: the `websockets` library's server echoing every message.

    python -m benches.load.peers.ws_echo --port PORT

No compression and no keepalive pings, like the clients and proxies in front of it, so a round trip
costs the same framing everywhere.
"""

from __future__ import annotations

import argparse
import asyncio

from websockets.asyncio.server import ServerConnection, serve


async def echo(conn: ServerConnection) -> None:
    async for message in conn:
        await conn.send(message)


async def main(port: int) -> None:
    async with serve(echo, "127.0.0.1", port, compression=None, ping_interval=None, max_size=2**20, backlog=1024):
        await asyncio.Future()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(ap.parse_args().port))
