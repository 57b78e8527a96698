#!/usr/bin/python3
"""A tiny echo server on the `websockets` package (asyncio), used by test/client.test.js.

Usage: python-echo-server.py PORT [--subprotocol NAME]

Listens on 127.0.0.1:PORT (0 = any free port) and prints "PORT <n>" on stdout once bound.
Echoes text as text and binary as binary. On the path /close4001 it closes the connection
with 4001 'py-bye' after the first message. When a connection ends it prints
"CLOSED <path> <code> <reason>" so the test can see the close code the server received.
Exits when stdin is closed (so it never outlives the test process) or on SIGTERM.
"""

import argparse
import asyncio
import signal
import sys

import websockets


def emit(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def handler(websocket, path=None):
    path = websocket.path
    try:
        async for message in websocket:
            if path == "/close4001":
                await websocket.close(4001, "py-bye")
                break
            await websocket.send(message)
    except websockets.ConnectionClosed:
        pass
    await websocket.wait_closed()
    emit("CLOSED %s %s %s" % (path, websocket.close_code, websocket.close_reason))


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--subprotocol", action="append")
    args = parser.parse_args()

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    # Stdin reaching EOF means the parent test process is gone (or done with us).
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1(65536) or (stop.done() or stop.set_result(None)))

    async with websockets.serve(
        handler,
        "127.0.0.1",
        args.port,
        subprotocols=args.subprotocol,
        compression=None,
        max_size=None,
        ping_interval=None,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        emit("PORT %d" % port)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
