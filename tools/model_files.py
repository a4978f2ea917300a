"""Model files for measuring srlab's model-file path without downloading any: random weights
at the sizes community models are published at, and the tile context they need.

  make DIR      writes DIR/4x-span-48nf.safetensors (SPAN at its paper's 48 feature
                channels), DIR/4x-compact-64nf-32c.safetensors (the
                Real-ESRGAN Compact of realesr-general-x4v3) and DIR/4x-esrgan-64nf-23b.pth
                (ESRGAN/RRDBNet as RealESRGAN_x4plus), built with spandrel's own classes.
                Speed does not depend on the weights' values, so `srlab bench --file` on
                these gives the speed of the real models of that size (docs/model-files.md).
  context FILE...  the largest |tiled - untiled| (8-bit levels) on the bundled sample photo
                for each tile overlap, with 48-pixel tiles (--readme FILE writes the table):
                the overlap where it reaches 0-2 is what the file needs (srlab's default:
                zoo.foreign.DEFAULT_CONTEXT; raise it with `srlab upscale --overlap N`).
                Random weights spread every input pixel's influence as far as the
                architecture allows; a trained file may need less.

Usage: python tools/model_files.py make out/model-files
       python tools/model_files.py context out/model-files/4x-span-48nf.safetensors
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from srlab.zoo.foreign import DEFAULT_CONTEXT, load_model_file


def make(out: Path) -> None:
    from safetensors.torch import save_file

    from srlab.zoo.foreign import import_spandrel

    import_spandrel()  # spandrel imported as srlab imports it
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.SPAN import SPAN

    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    nets = {"4x-span-48nf.safetensors": SPAN(num_in_ch=3, num_out_ch=3, feature_channels=48,
                                              upscale=4),
            "4x-compact-64nf-32c.safetensors": Compact(num_in_ch=3, num_out_ch=3, num_feat=64,
                                                       num_conv=32, upscale=4),
            "4x-esrgan-64nf-23b.pth": ESRGAN(in_nc=3, out_nc=3, num_filters=64, num_blocks=23,
                                             scale=4)}
    for name, net in nets.items():
        path = out / name
        if name.endswith(".pth"):
            torch.save(net.state_dict(), path)
        else:
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
        print(f"{path}: {sum(p.numel() for p in net.parameters()):,} parameters")


def context(path: Path, overlaps: list[int], size: tuple[int, int]) -> list[int]:
    """Max |tiled - untiled| in 8-bit levels per overlap (printed as it goes)."""
    from srlab.image.imageio import SAMPLE_IMAGE, load_image
    from srlab.runtime.foreign import ForeignUpscaler

    fm = load_model_file(path)
    up = ForeignUpscaler(fm)
    img = load_image(SAMPLE_IMAGE).array[: size[1], : size[0], :3]
    whole = up.upscale_array(img).astype(int)
    print(f"{path.name}: {fm.info.architecture} x{fm.info.scale}, tiles of 48 on "
          f"{img.shape[1]}x{img.shape[0]}, default context {DEFAULT_CONTEXT}")
    diffs = []
    for ov in overlaps:
        tiled = up.upscale_array(img, tile=48, overlap=ov).astype(int)
        diffs.append(int(np.abs(whole - tiled).max()))
        print(f"  overlap {ov:3d}: max |tiled - untiled| = {diffs[-1]} levels", flush=True)
    return diffs


def context_table(files: list[Path], overlaps: list[int], rows: list[list[int]],
                  size: tuple[int, int]) -> str:
    head = "| file | params | " + " | ".join(f"overlap {o}" for o in overlaps) + " |"
    lines = [head, "|" + "---|" * (2 + len(overlaps))]
    for f, diffs in zip(files, rows, strict=True):
        lines.append(f"| {f.name} | {load_model_file(f).info.params:,} | "
                     + " | ".join(str(d) for d in diffs) + " |")
    cmd = "python tools/model_files.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return "\n".join(lines) + (
        f"\n\nLargest |tiled - untiled| in 8-bit levels, tiles of 48 LR pixels on the "
        f"bundled sample photo cropped to {size[0]}x{size[1]}, x4, random weights at the "
        f"published sizes; srlab's default context is {DEFAULT_CONTEXT}. Made by `{cmd}`.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("out", type=Path)
    c = sub.add_parser("context")
    c.add_argument("files", nargs="+", type=Path)
    c.add_argument("--overlaps", type=int, nargs="+", default=[0, 16, 32, 48, 64])
    c.add_argument("--size", type=int, nargs=2, default=[144, 112], metavar=("W", "H"))
    c.add_argument("--readme", type=Path, default=None, metavar="FILE",
                   help="also write the table between FILE's srlab:SECTION markers")
    c.add_argument("--section", default="model-file-context")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.cmd == "make":
        make(args.out)
    else:
        size = tuple(args.size)
        rows = [context(f, args.overlaps, size) for f in args.files]
        if args.readme is not None:
            from srlab.eval.tables import update_readme

            update_readme(args.readme, args.section,
                          context_table(args.files, args.overlaps, rows, size))


if __name__ == "__main__":
    sys.exit(main())
