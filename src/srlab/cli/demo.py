"""srlab demo: the bundled sample, shrunk and upscaled back, beside bicubic."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from srlab.cli.common import add_common_model_args, check_model, set_threads, warn_if_untrained
from srlab.image.imageio import SAMPLE_IMAGE


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="upscale the bundled sample image and compare with bicubic",
        description="Shrink the bundled sample image with MATLAB bicubic, upscale it back with "
                    "a model, write the result and a labelled side-by-side (LR | bicubic | "
                    "model | original), and print PSNR/SSIM (Y channel, border = scale) of "
                    "bicubic and of the model against the original.",
    )
    add_common_model_args(p)
    p.add_argument("--out", type=Path, default=Path("out/demo"), metavar="DIR",
                   help="output folder (default: out/demo)")
    p.set_defaults(handler=run)


def _label_font(size: int = 14):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def compare_panel(panels: Sequence[tuple[str, Any]], *, gap: int = 6) -> Any:
    """Equal-size uint8 RGB images side by side, each with a caption above; an RGB array."""
    import numpy as np
    from PIL import Image, ImageDraw

    h, w = panels[0][1].shape[:2]
    font = _label_font()
    strip = 24
    canvas = Image.new("RGB", (len(panels) * w + (len(panels) + 1) * gap, h + strip + gap),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (label, arr) in enumerate(panels):
        x = gap + i * (w + gap)
        canvas.paste(Image.fromarray(np.ascontiguousarray(arr)), (x, strip))
        draw.text((x + 2, 4), label, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def run(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    import numpy as np

    from srlab.api import load_model
    from srlab.image.imageio import load_image, save_image
    from srlab.image.metrics import psnr, ssim
    from srlab.image.resize import imresize, modcrop

    s = args.scale
    model = check_model(args.model, s)
    hr = load_image(SAMPLE_IMAGE).array
    if hr.ndim == 2:
        hr = np.repeat(hr[..., None], 3, axis=2)
    hr = modcrop(hr[..., :3], s)
    h, w = hr.shape[:2]
    lr = imresize(hr, size=(h // s, w // s))  # the protocol's degradation: MATLAB bicubic
    up = load_model(model, s, weights=args.weights)
    warn_if_untrained(up)
    sr = up.upscale_array(lr)
    bicubic = imresize(lr, s)
    nearest = np.repeat(np.repeat(lr, s, axis=0), s, axis=1)

    def score(img: np.ndarray) -> tuple[float, float]:
        return (psnr(img, hr, crop_border=s, y_channel=True),
                ssim(img, hr, crop_border=s, y_channel=True))

    base_label = "bicubic (MATLAB)"
    rows = [(base_label, *score(bicubic)), (model, *score(sr))]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sr_path, cmp_path = out / f"sample_x{s}.png", out / f"compare_x{s}.png"
    save_image(sr, sr_path)
    panel = compare_panel([
        (f"LR {w // s}x{h // s} (nearest)", nearest),
        (f"bicubic (MATLAB)  {rows[0][1]:.2f} dB", bicubic),
        (f"{model}  {rows[1][1]:.2f} dB", sr),
        (f"original {w}x{h}", hr),
    ])
    save_image(panel, cmp_path)

    kind = "no parameters" if up.params == 0 else \
        f"{'trained' if up.trained else 'UNTRAINED'}, {up.params:,} parameters"
    print(f"sample {w}x{h} -> LR {w // s}x{h // s} (MATLAB bicubic) -> x{s} with '{model}' "
          f"({kind})")
    name_w = max(len(r[0]) for r in (("method",), *rows))
    print(f"{'method'.ljust(name_w)}  PSNR (Y)  SSIM (Y)   (border {s} px)")
    for label, p_db, s_val in rows:
        print(f"{label.ljust(name_w)}  {p_db:8.2f}  {s_val:8.4f}")
    print(f"{model} vs bicubic: {rows[1][1] - rows[0][1]:+.2f} dB")
    print(f"wrote {sr_path}")
    print(f"wrote {cmp_path}  (LR | bicubic | {model} | original)")
    return 0
