"""Render srlab's bundled demo image, src/srlab/assets/sample.png, from code.

The sample must be free to ship, so it is not a photo or a crop of a benchmark set: it is a
procedurally drawn scene with what super-resolution is judged on — straight and curved
edges, thin lines, fine periodic texture (bricks, roof tiles, fence), random texture (grass,
rock), smooth gradients and text. It is rendered at 4x and box-filtered down, so edges are
anti-aliased like a camera's, then given a little sensor noise.

    .venv/bin/python tools/make_sample.py            # rewrites the PNG (deterministic)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SIZE = 256
SS = 4  # supersampling factor
OUT = Path(__file__).resolve().parents[1] / "src" / "srlab" / "assets" / "sample.png"


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1]: a coarse random grid upsampled bicubically."""
    grid = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return np.asarray(grid.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0


def _fractal_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    octaves = [(4, 0.5), (16, 0.25), (64, 0.15), (256, 0.1)]
    return sum(w * _value_noise(rng, size, c) for c, w in octaves)


def _ridge(rng: np.random.Generator, n: int, base: float, rough: float) -> np.ndarray:
    """A mountain skyline by midpoint displacement."""
    pts = np.array([base, base])
    amp = rough
    while len(pts) < n:
        mids = (pts[:-1] + pts[1:]) / 2 + rng.normal(0, amp, len(pts) - 1)
        out = np.empty(len(pts) * 2 - 1)
        out[0::2], out[1::2] = pts, mids
        pts, amp = out, amp * 0.55
    return np.interp(np.linspace(0, len(pts) - 1, n), np.arange(len(pts)), pts)


def render(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = SIZE * SS
    s = SS
    yy = np.linspace(0, 1, n)[:, None]
    sky = np.stack([110 + 100 * yy, 160 + 70 * yy, 235 + 15 * yy], axis=-1) * np.ones((1, n, 1))
    img = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)

    # sun with a soft glow, clouds
    glow = Image.new("L", (n, n), 0)
    ImageDraw.Draw(glow).ellipse([190 * s, 14 * s, 240 * s, 64 * s], fill=160)
    glow = glow.filter(ImageFilter.GaussianBlur(12 * s))
    img = Image.composite(Image.new("RGB", (n, n), (255, 244, 200)), img, glow)
    draw = ImageDraw.Draw(img)
    draw.ellipse([202 * s, 26 * s, 228 * s, 52 * s], fill=(255, 236, 150))
    clouds = Image.new("L", (n, n), 0)
    cd = ImageDraw.Draw(clouds)
    for cx, cy, r in [(40, 30, 14), (58, 24, 18), (78, 32, 13), (120, 48, 10), (134, 44, 12)]:
        cd.ellipse([(cx - r) * s, (cy - r * 0.6) * s, (cx + r) * s, (cy + r * 0.6) * s], fill=220)
    clouds = clouds.filter(ImageFilter.GaussianBlur(3 * s))
    img = Image.composite(Image.new("RGB", (n, n), (250, 250, 252)), img, clouds)
    draw = ImageDraw.Draw(img)

    # far mountains (bluish), near hills (green), each with a fractal ridge
    far = _ridge(rng, n, 95 * s, 30 * s)
    draw.polygon([(0, n)] + [(x, far[x]) for x in range(0, n, 2)] + [(n, n)],
                 fill=(120, 135, 160))
    near = _ridge(rng, n, 130 * s, 18 * s)
    draw.polygon([(0, n)] + [(x, near[x]) for x in range(0, n, 2)] + [(n, n)],
                 fill=(86, 140, 60))
    labels = np.zeros((n, n), np.uint8)  # 1 = rock, 2 = grass: where texture goes
    rows = np.arange(n)[:, None]
    labels[(rows > far[None, :]) & (rows <= near[None, :])] = 1
    labels[rows > near[None, :]] = 2
    landscape = np.asarray(img).copy()  # what changes from here on is an object, untextured

    # path in perspective
    draw.polygon([(118 * s, n), (150 * s, 150 * s), (156 * s, 150 * s), (210 * s, n)],
                 fill=(176, 152, 112))

    # house: brick wall, tiled roof, window with panes, door
    x0, y0, x1, y1 = 28 * s, 140 * s, 112 * s, 214 * s
    draw.rectangle([x0, y0, x1, y1], fill=(170, 84, 60))
    bh, bw = 5 * s, 12 * s
    for row, y in enumerate(range(y0, y1, bh)):
        draw.line([(x0, y), (x1, y)], fill=(215, 205, 190), width=s)
        off = (bw // 2) * (row % 2)
        for x in range(x0 - off, x1, bw):
            if x > x0:
                draw.line([(x, y), (x, min(y + bh, y1))], fill=(215, 205, 190), width=s)
    draw.polygon([(x0 - 8 * s, y0), ((x0 + x1) // 2, 104 * s), (x1 + 8 * s, y0)],
                 fill=(90, 50, 40))
    for k in range(1, 12):  # roof tiles: lines converging to the ridge
        t = k / 12
        xb = x0 - 8 * s + t * (x1 - x0 + 16 * s)
        draw.line([((x0 + x1) // 2, 104 * s), (xb, y0)], fill=(60, 32, 26), width=s)
    for k in range(1, 6):
        yk = 104 * s + k * (y0 - 104 * s) // 6
        half = (yk - 104 * s) * (x1 - x0 + 16 * s) // (2 * (y0 - 104 * s))
        draw.line([((x0 + x1) // 2 - half, yk), ((x0 + x1) // 2 + half, yk)],
                  fill=(60, 32, 26), width=s)
    wx0, wy0 = 42 * s, 156 * s
    draw.rectangle([wx0, wy0, wx0 + 26 * s, wy0 + 22 * s], fill=(240, 240, 235))
    draw.rectangle([wx0 + 2 * s, wy0 + 2 * s, wx0 + 24 * s, wy0 + 20 * s], fill=(70, 110, 150))
    frame = (240, 240, 235)
    draw.line([(wx0 + 13 * s, wy0), (wx0 + 13 * s, wy0 + 22 * s)], fill=frame, width=2 * s)
    draw.line([(wx0, wy0 + 11 * s), (wx0 + 26 * s, wy0 + 11 * s)], fill=frame, width=2 * s)
    draw.rectangle([84 * s, 176 * s, 100 * s, 214 * s], fill=(60, 42, 30))
    draw.ellipse([96 * s, 194 * s, 98 * s, 196 * s], fill=(220, 190, 80))

    # tree: trunk and a textured crown
    draw.rectangle([168 * s, 150 * s, 175 * s, 196 * s], fill=(92, 64, 40))
    for cx, cy, r in [(171, 128, 20), (160, 140, 14), (183, 139, 15), (171, 112, 13)]:
        draw.ellipse([(cx - r) * s, (cy - r) * s, (cx + r) * s, (cy + r) * s], fill=(48, 100, 44))
    crown_img = Image.new("1", (n, n), 0)
    cdraw = ImageDraw.Draw(crown_img)
    for cx, cy, r in [(171, 128, 20), (160, 140, 14), (183, 139, 15), (171, 112, 13)]:
        cdraw.ellipse([(cx - r) * s, (cy - r) * s, (cx + r) * s, (cy + r) * s], fill=1)
    crown = np.asarray(crown_img)

    # fence: thin posts and two rails
    for x in range(196 * s, n, 6 * s):
        draw.rectangle([x, 190 * s, x + s, 222 * s], fill=(235, 230, 220))
    for y in (198 * s, 212 * s):
        draw.rectangle([196 * s, y, n, y + s], fill=(235, 230, 220))

    # sign with text
    draw.rectangle([132 * s, 208 * s, 134 * s, 246 * s], fill=(80, 60, 40))
    draw.rectangle([120 * s, 196 * s, 188 * s, 226 * s], fill=(245, 240, 225),
                   outline=(40, 40, 40), width=s)
    try:
        big = ImageFont.load_default(size=15 * s)
        small = ImageFont.load_default(size=6 * s)
    except (TypeError, OSError):
        big = small = ImageFont.load_default()
    draw.text((125 * s, 197 * s), "srlab", fill=(180, 30, 30), font=big)
    draw.text((125 * s, 215 * s), "super-resolution 4x", fill=(20, 20, 20), font=small)

    arr = np.asarray(img, dtype=np.float32)
    labels[np.any(np.asarray(img) != landscape, axis=-1)] = 0
    labels[crown] = 3
    tex = _fractal_noise(rng, n)[..., None]
    fine = rng.normal(0, 1, (n, n)).astype(np.float32)[..., None]
    rock = labels[..., None] == 1
    grass = labels[..., None] == 2
    leaves = labels[..., None] == 3
    arr = np.where(rock, arr * (0.75 + 0.5 * tex) + 6 * fine, arr)
    grass_blades = np.asarray(
        Image.fromarray((rng.random((n, n)) * 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(1)).resize((n, n)), np.float32)[..., None] / 255.0
    arr = np.where(grass, arr * (0.7 + 0.45 * tex + 0.25 * grass_blades), arr)
    arr = np.where(leaves, arr * (0.6 + 0.8 * tex) + 10 * fine, arr)
    small_img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).resize(
        (SIZE, SIZE), Image.BOX)
    out = np.asarray(small_img, np.float32) + rng.normal(0, 1.2, (SIZE, SIZE, 3))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(render()).save(OUT, optimize=True)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")
