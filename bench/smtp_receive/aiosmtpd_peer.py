"""The peer: aiosmtpd with a handler that fsyncs each message to a file
("fsync"), or stores nothing ("none"). Run as a subprocess by run.py."""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid

from aiosmtpd.smtp import SMTP


class FsyncHandler:
    def __init__(self, directory: str) -> None:
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's API)
        path = os.path.join(self.directory, uuid.uuid4().hex)
        data = envelope.original_content

        def write() -> None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)

        await asyncio.get_running_loop().run_in_executor(None, write)
        return "250 OK"


class NullHandler:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        return "250 OK"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("fsync", "none"), required=True)
    parser.add_argument("--dir", default=".")
    args = parser.parse_args()
    handler = FsyncHandler(args.dir) if args.mode == "fsync" else NullHandler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, data_size_limit=200 * 1024 * 1024, enable_SMTPUTF8=True),
        "127.0.0.1",
        args.port,
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
