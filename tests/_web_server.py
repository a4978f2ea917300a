"""Run ``srlab.web.create_app`` (the app ``srlab serve`` runs) under uvicorn in a thread.

In-process rather than a subprocess: Gradio takes seconds to import, and the web tests pay
that once per session instead of once per server. The listening socket is bound before the
server starts (port 0), so there is no free-port race with other test runs on the machine.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def running_server(limits=None, *, with_state: bool = False) -> Iterator:
    """Yield the base URL of a live server with ``limits`` (with ``with_state``: the URL and
    the server's ``ServerState``); shut it down afterwards."""
    import uvicorn

    from srlab import web

    app = web.create_app(limits)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the srlab web server did not start")
        time.sleep(0.05)
    try:
        url = f"http://127.0.0.1:{port}"
        yield (url, app.state.srlab) if with_state else url
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def make_shipped_pair(folder, monkeypatch):
    """Point srlab at a weights folder holding span x4 and a stand-in span-real x4 (span's
    weights x 0.5, saved as span-real), so ``auto`` is available whatever ships today.

    The same construction as tests/test_auto.py's ``shipped_pair`` fixture.
    """
    import torch

    from srlab.api import load_model
    from srlab.zoo import weights

    span = weights.shipped_weights_path("span", 4)
    _, meta = weights.read_weights(span)
    (folder / "span_x4.safetensors").write_bytes(span.read_bytes())
    net = load_model("span", 4, fuse=False).net
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.5)
    meta.arch = "span-real"
    weights.save_weights(net, meta, folder / "span-real_x4.safetensors")
    monkeypatch.setattr(weights, "SHIPPED_DIR", folder)
    return folder
