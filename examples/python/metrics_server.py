"""Serve a gateway's metrics on an HTTP port for a Prometheus scrape, and
ship its call log through the callback.

    LLMUX_LIB_PATH=build/lib/libllmux.so python3 examples/python/metrics_server.py llmux.json 9464

then point Prometheus at http://127.0.0.1:9464/metrics. Every call the
gateway makes (here: none until your code calls gw.chat.completions.create)
shows in the counters and histograms; each log record is printed to stdout.
"""

import http.server
import sys
import threading

import llmux


def serve(gw: llmux.Gateway, port: int = 9464, host: str = "127.0.0.1") -> http.server.HTTPServer:
    """Start a thread serving gw.metrics() at /metrics; returns the server
    (server.server_address[1] is the port; server.shutdown() stops it)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = gw.metrics().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # quiet
            pass

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    config = sys.argv[1] if len(sys.argv) > 1 else "llmux.json"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 9464
    with llmux.Gateway(config) as gw:
        gw.set_log_callback(print)  # runs on the gateway's log writer thread
        server = serve(gw, port)
        print("metrics on http://127.0.0.1:%d/metrics" % server.server_address[1], flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            server.shutdown()


if __name__ == "__main__":
    main()
