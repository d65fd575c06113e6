"""Serve this folder on localhost with cross-origin isolation, so the page can use WASM threads.

    python serve.py [--port 8000] [--bind 127.0.0.1]

`python -m http.server` serves the page as well; without the two headers below browsers withhold
SharedArrayBuffer and onnxruntime-web runs on one thread. Standard library only.
"""

from __future__ import annotations

import argparse
import functools
import http.server
from pathlib import Path


class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with COOP/COEP (cross-origin isolation) and no caching."""

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    args = parser.parse_args(argv)
    folder = Path(__file__).resolve().parent
    handler = functools.partial(IsolatedHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer((args.bind, args.port), handler) as server:
        host, port = server.server_address[:2]
        print(f"serving {folder} at http://{host}:{port}/ (cross-origin isolated: WASM threads "
              "available); Ctrl-C stops", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
