"""Copy the published figures for srlab's architectures out of ../shared/published-results.md.

docs/benchmarks.md shows our measured tables beside the papers' numbers; this keeps the cited
numbers a verbatim extract of the reference file rather than something typed by hand.

    python tools/published_table.py --readme docs/benchmarks.md   (any file with the markers)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROWS = ("Bicubic", "SRCNN", "FSRCNN", "ESPCN", "VDSR", "CARN-M", "EDSR-baseline", "SAFMN")


def extract(text: str) -> str:
    out, scale = [], None
    for line in text.splitlines():
        if line.startswith("## x"):
            scale = line[4:].strip()
            continue
        if scale and line.startswith("| Method"):
            out += ["", f"x{scale}:", "", line, "|---|---|---|---|---|---|"]
        elif scale and line.startswith("| ") and line.split("|")[1].strip() in ROWS:
            out.append(line)
    return "\n".join(out).strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", type=Path, default=None)
    args = ap.parse_args()
    src = Path(os.environ.get("SRLAB_SHARED", "../shared")) / "published-results.md"
    if not src.is_file():
        print(f"error: {src} not found (set SRLAB_SHARED)", file=sys.stderr)
        return 1
    table = extract(src.read_text()) + (
        "\n\nPublished PSNR/SSIM (standard protocol), extracted verbatim from "
        "`../shared/published-results.md` by `python tools/published_table.py`; sources: SRCNN "
        "(Dong et al. 2016), FSRCNN (Dong et al. 2016), ESPCN (Shi et al. 2016), VDSR (Kim et "
        "al. 2016), CARN-M (Ahn et al. 2018), EDSR (Lim et al. 2017), SAFMN (Sun et al. 2023).")
    if args.readme:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        from srlab.eval.tables import update_readme

        update_readme(args.readme, "published", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
