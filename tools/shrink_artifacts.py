"""Re-encode the shipped progress GIFs and curve PNGs the small way (srlab/train/report.py).

Why: GIFs written before artifacts.py used a palette per frame (up to 1.3 MB each) and the
curves were full-colour RGBA; new runs and `srlab ship` write the small form already, this
brings the files shipped before up to it. A file is replaced only when the result is smaller.

Usage: python tools/shrink_artifacts.py [FOLDER ...]   (default: src/srlab/weights)
"""

from __future__ import annotations

import sys
from pathlib import Path

from srlab.train.report import GIF_FRAMES, shrink_artifact

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    folders = [Path(a) for a in argv] or [ROOT / "src" / "srlab" / "weights"]
    total_before = total_after = 0
    for folder in folders:
        for path in sorted(folder.glob("*/*")):
            if path.suffix.lower() not in (".gif", ".png"):
                continue
            before, after = shrink_artifact(path, gif_frames=GIF_FRAMES)
            total_before += before
            total_after += after
            print(f"{before:>9,} -> {after:>9,}  {path}")
    print(f"total {total_before:,} -> {total_after:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
