#!/usr/bin/python3
"""TLS-terminating TCP proxy for the tests: puts a plain-TCP server (s3s-fs, an HTTP stand-in)
behind TLS on loopback.

  tls-proxy.py --listen PORT --backend PORT --cert FILE --key FILE [--log FILE]

Listens on 127.0.0.1:PORT. For each connection it runs the TLS handshake (server side, with
--cert, a PEM chain, and --key, a PEM private key), then opens a plain TCP connection to
127.0.0.1:BACKEND and copies bytes both ways with back-pressure, so large bodies stream
rather than buffer. Closing: when the backend closes, what it sent is flushed to the
client and the TLS side is closed with a close_notify. When the TLS client closes first
(close_notify or FIN), the backend gets a FIN (shutdown SHUT_WR), but asyncio's TLS
transport is gone by then, so anything the backend answers after that is dropped (logged
as "Connection lost"). HTTP clients never half-close, so HTTP and S3 traffic is unaffected.

It logs one line per connection when it ends (bytes each way, duration), one per failed
handshake and one per failed backend connection, to stderr or --log FILE (appended).
The only line on stdout is "ready PORT" once it listens (--listen 0 picks a free port).
Stdlib only; Python 3.11 or later (StreamWriter.start_tls). SIGINT or SIGTERM stops it (exit 0).
"""
import argparse
import asyncio
import signal
import ssl
import sys
import time

CHUNK = 64 * 1024


class Log:
    """One-line log records, to stderr or a file."""

    def __init__(self, path):
        self.out = open(path, "a", buffering=1) if path else sys.stderr

    def __call__(self, text):
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} tls-proxy: {text}", file=self.out, flush=True)


async def pipe(reader, writer, counter, key, on_eof):
    """Copies reader to writer until EOF or an error; counts bytes in counter[key]."""
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            counter[key] += len(data)
            await writer.drain()
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError, ConnectionError) as e:
        counter.setdefault("errors", []).append(f"{key}: {type(e).__name__}: {e}")
    finally:
        on_eof()


def make_handler(args, ctx, log):
    async def handle(client_reader, client_writer):
        peer = client_writer.get_extra_info("peername") or ("?", 0)
        who = f"{peer[0]}:{peer[1]}"
        start = time.monotonic()
        try:
            await client_writer.start_tls(ctx, ssl_handshake_timeout=10)
        except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError) as e:
            log(f"{who} handshake failed: {type(e).__name__}: {e}")
            client_writer.transport.abort()
            return
        version = client_writer.get_extra_info("ssl_object").version()
        try:
            backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", args.backend)
        except OSError as e:
            log(f"{who} ({version}) backend 127.0.0.1:{args.backend} unreachable: {e}")
            client_writer.close()
            return
        counter = {"up": 0, "down": 0}

        def client_done():
            # The TLS client has stopped sending: half-close towards the backend.
            try:
                if backend_writer.can_write_eof() and not backend_writer.is_closing():
                    backend_writer.write_eof()
            except OSError:
                pass

        def backend_done():
            # The backend has finished: flush and close the TLS side (close_notify).
            client_writer.close()

        up = asyncio.create_task(pipe(client_reader, backend_writer, counter, "up", client_done))
        down = asyncio.create_task(pipe(backend_reader, client_writer, counter, "down", backend_done))
        await down
        # The backend is done; give the client side a moment to finish, then stop.
        try:
            await asyncio.wait_for(up, timeout=5)
        except asyncio.TimeoutError:
            pass
        backend_writer.close()
        for w in (client_writer, backend_writer):
            try:
                await asyncio.wait_for(w.wait_closed(), timeout=5)
            except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError):
                pass
        errors = "; ".join(counter.get("errors", [])) or "clean"
        log(f"{who} ({version}) closed: up {counter['up']} B, down {counter['down']} B, "
            f"{time.monotonic() - start:.2f} s, {errors}")

    return handle


async def serve(args, log):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server = await asyncio.start_server(make_handler(args, ctx, log), "127.0.0.1", args.listen)
    port = server.sockets[0].getsockname()[1]
    log(f"listening on 127.0.0.1:{port}, backend 127.0.0.1:{args.backend}")
    print(f"ready {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    log("stopped")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", type=int, required=True, help="TLS port on 127.0.0.1 (0: any free one)")
    ap.add_argument("--backend", type=int, required=True, help="plain TCP port on 127.0.0.1")
    ap.add_argument("--cert", required=True, help="PEM certificate chain, server first")
    ap.add_argument("--key", required=True, help="PEM private key")
    ap.add_argument("--log", help="append log lines to this file instead of stderr")
    args = ap.parse_args()
    log = Log(args.log)
    try:
        asyncio.run(serve(args, log))
    except (OSError, ssl.SSLError) as e:
        log(f"cannot start: {e}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
