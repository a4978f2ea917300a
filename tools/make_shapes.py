"""Synthetic clean-edge training images: flat colours, sharp outlines, strokes and glyphs.

Why: on drawings, screenshots, chips and comics (a third of RealSRSet) the peers draw one
clean, sharp edge where srlab's real-photo models draw a soft or wobbly one. Real-ESRGAN's
compact anime model learned that prior from anime frames; srlab has no such data offline,
and its photo training set (T91, BSDS500, ImageNet-sample400) is nearly all texture. These
images give a training run content whose sharp answer is unambiguous, so even the L1 term
rewards a clean edge instead of the average of several.

Each image is drawn at twice its size and reduced with Lanczos (anti-aliased edges, no
staircase), seeded by (seed, index): the same command gives the same files.

Usage: python tools/make_shapes.py OUT [-n 300] [--size 640] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GLYPHS = "ABCDEFGHJKLMNPQRSTUVWXYZabdefghkmnpqrstuvwxyz0123456789&@#%?"


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    if rng.random() < 0.2:  # near-black or near-white: ink and paper
        v = int(rng.integers(0, 40)) if rng.random() < 0.5 else int(rng.integers(215, 256))
        return (v, v, v)
    return tuple(int(c) for c in rng.integers(0, 256, 3))  # type: ignore[return-value]


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """A flat colour, or a smooth two-colour gradient (skies, shading)."""
    a, b = np.array(_colour(rng), np.float32), np.array(_colour(rng), np.float32)
    if rng.random() < 0.5:
        return Image.new("RGB", (size, size), tuple(int(c) for c in a))
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)
    ramp = t[None, :, None] if rng.random() < 0.5 else t[:, None, None]
    img = a + (b - a) * np.broadcast_to(ramp, (size, size, 1))
    return Image.fromarray(img.astype(np.uint8))


def shapes_image(rng: np.random.Generator, size: int = 640) -> np.ndarray:
    """One size x size RGB uint8 image of random flat shapes, outlined strokes and glyphs."""
    big = 2 * size
    img = _background(rng, big)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(30, 90))):
        kind = rng.choice(["polygon", "ellipse", "rect", "stroke", "glyph"],
                          p=[0.3, 0.25, 0.15, 0.2, 0.1])
        fill = _colour(rng)
        outline = _colour(rng) if rng.random() < 0.5 else None
        width = int(rng.integers(2, 14))
        cx, cy = rng.integers(0, big, 2)
        r = int(rng.integers(big // 40, big // 5))
        if kind == "polygon":
            n = int(rng.integers(3, 9))
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            rad = r * rng.uniform(0.5, 1.0, n)
            pts = [(float(cx + q * np.cos(a)), float(cy + q * np.sin(a)))
                   for a, q in zip(ang, rad, strict=True)]
            draw.polygon(pts, fill=fill, outline=outline, width=width)
        elif kind == "ellipse":
            ry = int(r * rng.uniform(0.4, 1.0))
            draw.ellipse([cx - r, cy - ry, cx + r, cy + ry], fill=fill, outline=outline,
                         width=width)
        elif kind == "rect":
            w, h = rng.integers(big // 40, big // 4, 2)
            draw.rectangle([cx, cy, cx + w, cy + h], fill=fill, outline=outline, width=width)
        elif kind == "stroke":  # a polyline of a few segments: ink lines of a drawing
            pts = [(float(cx), float(cy))]
            for _ in range(int(rng.integers(1, 5))):
                x, y = pts[-1]
                pts.append((x + float(rng.normal(0, r)), y + float(rng.normal(0, r))))
            draw.line(pts, fill=fill, width=int(rng.integers(2, 24)), joint="curve")
        else:
            font = ImageFont.load_default(size=int(rng.integers(24, 200)))
            text = "".join(rng.choice(list(GLYPHS), int(rng.integers(1, 6))))
            draw.text((float(cx), float(cy)), text, fill=fill, font=font,
                      stroke_width=int(rng.integers(0, 4)), stroke_fill=outline)
    return np.asarray(img.resize((size, size), Image.LANCZOS))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for i in range(args.n):
        rng = np.random.default_rng([args.seed, i])
        Image.fromarray(shapes_image(rng, args.size)).save(args.out / f"shapes_{i:04d}.png")
    print(f"{args.n} images in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
