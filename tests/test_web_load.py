"""The web demo under load: a burst of uploads, some hostile, against the real app.

test_web_api.py checks each answer of ``/api/upscale`` once; this checks that many at once
— 20 concurrent valid upscales mixed with oversized, too-many-pixel, malformed and
unknown-model uploads — are each served (200, correct size) or refused clearly (503
"busy, try again" for valid ones when the queue is full; 400/413 for bad ones), that the
server keeps answering (health OK, nothing left pending), and that its memory stays bounded
across two bursts. The server runs in this process (as in test_web_api.py), so the RSS
measured is the server's plus the test client's.
"""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("gradio", reason="the web extra is not installed: pip install 'srlab[web]'")
httpx = pytest.importorskip("httpx")
psutil = pytest.importorskip("psutil", reason="psutil measures the server's memory: "
                                              "pip install psutil")

from _web_server import running_server  # noqa: E402
from PIL import Image  # noqa: E402

from srlab import web  # noqa: E402
from srlab.zoo.registry import DEFAULT_MODEL  # noqa: E402

LIMITS = web.Limits(max_upload_bytes=200_000, max_pixels=128 * 128, concurrency=1,
                    queue_size=6)
VALID = 20
ROUNDS = 2
RSS_GROWTH_LIMIT_MB = 500


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _valid_requests(rng: np.random.Generator) -> list[tuple[str, dict, bytes, tuple[int, int]]]:
    """(kind, params, body, expected output (w, h)): bicubic x2 and the default model x4."""
    reqs = []
    for i in range(VALID):
        h, w = int(rng.integers(16, 48)), int(rng.integers(16, 48))
        body = _png(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        if i % 2:
            reqs.append(("valid", {"model": DEFAULT_MODEL, "scale": 4}, body, (4 * w, 4 * h)))
        else:
            reqs.append(("valid", {"model": "bicubic", "scale": 2}, body, (2 * w, 2 * h)))
    return reqs


def _bad_requests(rng: np.random.Generator) -> list[tuple[str, dict, bytes, set[int]]]:
    """(kind, params, body, acceptable statuses) — 503 is acceptable when refused as busy."""
    good = _png(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    return [
        ("oversized bytes", {"model": "bicubic", "scale": 2},
         rng.bytes(LIMITS.max_upload_bytes + 100_000), {413}),
        ("too many pixels", {"model": "bicubic", "scale": 2},
         _png(np.zeros((200, 200, 3), np.uint8)), {413, 503}),
        ("text file", {"model": "bicubic", "scale": 2}, b"not an image\n" * 50, {400, 503}),
        ("truncated png", {"model": "bicubic", "scale": 2}, good[: len(good) // 2], {400, 503}),
        ("empty", {"model": "bicubic", "scale": 2}, b"", {400, 503}),
        ("unknown model", {"model": "no-such-model", "scale": 2}, good, {400}),
    ]


def _post(client: httpx.Client, params: dict, body: bytes) -> tuple[httpx.Response, float]:
    t0 = time.perf_counter()
    r = client.post("/api/upscale", params=params, files={"file": ("up.png", body, "image/png")})
    return r, time.perf_counter() - t0


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def test_burst_of_uploads(record_property):
    rng = np.random.default_rng(0)
    t_start = time.perf_counter()
    figures: dict[str, object] = {"served": 0, "busy": 0, "rejected": 0, "rounds": ROUNDS}
    latencies: list[float] = []
    with running_server(LIMITS) as base, httpx.Client(base_url=base, timeout=60) as client:
        for params in ({"model": "bicubic", "scale": 2}, {"model": DEFAULT_MODEL, "scale": 4}):
            r, _ = _post(client, params, _png(np.zeros((16, 16, 3), np.uint8)))  # warm-up:
            assert r.status_code == 200, r.text  # models loaded before memory is measured
        rss = [_rss_mb()]
        for _ in range(ROUNDS):
            valid, bad = _valid_requests(rng), _bad_requests(rng)
            jobs = [(k, p, b) for k, p, b, _ in valid] + [(k, p, b) for k, p, b, _ in bad]
            order = rng.permutation(len(jobs))
            bodies = [(p, b) for _, p, b in jobs]
            with ThreadPoolExecutor(len(jobs)) as pool:
                results = list(pool.map(_post, [client] * len(jobs),
                                        *zip(*[bodies[i] for i in order], strict=True)))
            by_job = dict(zip(order.tolist(), results, strict=True))
            for i, (_, _, _, size) in enumerate(valid):
                r, seconds = by_job[i]
                if r.status_code == 200:
                    out = Image.open(io.BytesIO(r.content))
                    assert out.size == size
                    figures["served"] = int(figures["served"]) + 1  # type: ignore[arg-type]
                    latencies.append(seconds)
                else:
                    assert r.status_code == 503, (r.status_code, r.text)
                    assert r.json()["error"] == "busy, try again"
                    assert r.headers.get("retry-after")
                    figures["busy"] = int(figures["busy"]) + 1  # type: ignore[arg-type]
            for j, (kind, _, _, allowed) in enumerate(bad, start=len(valid)):
                r, _ = by_job[j]
                assert r.status_code in allowed, (kind, r.status_code, r.text)
                assert r.json()["error"], kind
                figures["rejected"] = int(figures["rejected"]) + 1  # type: ignore[arg-type]
            health = client.get("/api/health")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert health.json()["pending"] == 0
            rss.append(_rss_mb())
        # alone (not busy), every bad upload gets its own precise refusal
        for kind, params, body, allowed in _bad_requests(rng):
            r, _ = _post(client, params, body)
            assert r.status_code in allowed - {503}, (kind, r.status_code, r.text)
        assert client.get("/api/health").json()["status"] == "ok"
    growth = max(rss) - rss[0]
    assert growth < RSS_GROWTH_LIMIT_MB, rss
    assert figures["served"] >= 1
    elapsed = time.perf_counter() - t_start
    assert elapsed < 60, elapsed
    lat = sorted(latencies)
    figures.update({
        "valid_requests": VALID * ROUNDS, "bad_requests": len(_bad_requests(rng)) * ROUNDS,
        "rss_mb": [round(x, 1) for x in rss], "rss_growth_mb": round(growth, 1),
        "latency_p50_s": round(lat[len(lat) // 2], 3), "latency_max_s": round(lat[-1], 3),
        "seconds": round(elapsed, 1),
        "limits": {"concurrency": LIMITS.concurrency, "queue_size": LIMITS.queue_size},
    })
    record_property("reliability", {"web": figures})


BIG_SIDE = 1024  # x4: a 4096 x 4096 (16.8 Mpx, 48 MB as uint8 RGB) result
BIG_GROWTH_LIMIT = 6.0  # peak RSS growth, in output-array sizes


def _peak_rss_during(fn) -> tuple[float, object]:
    """(peak RSS in MB sampled every 20 ms while ``fn`` runs, fn's result)."""
    import threading

    peak = [_rss_mb()]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        out = fn()
    finally:
        done.set()
        t.join()
    return peak[0], out


def test_large_output_memory_is_bounded(record_property):
    """A large result is tiled, written to disk and streamed: the server never holds more
    than the output array, one encoding copy and a tile's activations (no PNG bytes in
    memory, no second full-size image for the comparison)."""
    from srlab.image.resize import imresize

    y, x = np.mgrid[0:BIG_SIDE // 4, 0:BIG_SIDE // 4]
    small = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    body = _png(imresize(small, 4.0))  # smooth: a small PNG, a real 1024 x 1024 image
    limits = web.Limits(max_upload_bytes=8 * 2**20, max_pixels=BIG_SIDE * BIG_SIDE)
    out_mb = (4 * BIG_SIDE) ** 2 * 3 / 2**20
    with running_server(limits) as base, httpx.Client(base_url=base, timeout=300) as client:
        r, _ = _post(client, {"model": "bicubic", "scale": 4}, _png(small[:32, :32]))
        assert r.status_code == 200, r.text
        before = _rss_mb()

        def big() -> tuple[int, dict]:
            n = 0
            with client.stream("POST", "/api/upscale", params={"model": "bicubic", "scale": 4},
                               files={"file": ("big.png", body, "image/png")}) as resp:
                assert resp.status_code == 200, resp.read()
                for chunk in resp.iter_bytes():
                    n += len(chunk)
                return n, dict(resp.headers)

        peak, (nbytes, headers) = _peak_rss_during(big)
    assert headers["x-srlab-output-size"] == f"{4 * BIG_SIDE}x{4 * BIG_SIDE}"
    assert nbytes > 100_000
    growth = peak - before
    record_property("web_large_output", {"output_mb": round(out_mb, 1),
                                         "rss_before_mb": round(before, 1),
                                         "rss_peak_mb": round(peak, 1),
                                         "growth_mb": round(growth, 1)})
    assert growth < BIG_GROWTH_LIMIT * out_mb, (before, peak, out_mb)
