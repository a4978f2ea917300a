"""Tally of blind A/B judgements by source, and their sum over several judges.

../shared/tools/ab_score.py counts one sheet's verdict; a verdict fixed in advance as "the
sum over N judges, each on a fresh shuffle" and the split by source (RealSRSet photos and
each degraded track, the prefix of the stem ``tools/ab_outputs.py`` wrote) need both keys
and answers together. Sides are counted too: a judge answering one side far more often
than the other is biased, whatever the shuffle.

Usage: python tools/ab_tally.py [--by-image] KEY.json ANSWERS.txt [KEY2.json ANSWERS2.txt ...]
Prints one line per judgement (A's wins - B's wins, per source, L/R answered) and the sum;
``--by-image`` adds, over all judgements given, A's wins - B's wins per input, A's worst first
(the inputs a candidate loses every time).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Tally:
    """Wins of side ``a`` and ``b`` of ``ab_sheet.py``'s key, in all and per source."""

    a: Counter = field(default_factory=Counter)
    b: Counter = field(default_factory=Counter)
    sides: Counter = field(default_factory=Counter)
    a_image: Counter = field(default_factory=Counter)  # wins per input stem
    b_image: Counter = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.a.update(other.a)
        self.b.update(other.b)
        self.sides.update(other.sides)
        self.a_image.update(other.a_image)
        self.b_image.update(other.b_image)

    def by_image(self) -> list[str]:
        stems = set(self.a_image) | set(self.b_image)
        order = sorted(stems, key=lambda s: (self.a_image[s] / (self.a_image[s]
                                                                + self.b_image[s]), s))
        return [f"{s} {self.a_image[s]}-{self.b_image[s]}" for s in order]

    def line(self) -> str:
        sources = sorted(set(self.a) | set(self.b))
        split = "  ".join(f"{s} {self.a[s]}-{self.b[s]}" for s in sources)
        return (f"a-b {sum(self.a.values())}-{sum(self.b.values())}  {split}  "
                f"answered L {self.sides['L']} / R {self.sides['R']}")


def tally(key_path: Path, answers_path: Path) -> Tally:
    """One judgement: each ``pair_NN L|R`` line of the answers read through the key (lines
    that name no pair of the key, and ties, count for nobody)."""
    key = json.loads(Path(key_path).read_text())
    out = Tally()
    for line in Path(answers_path).read_text().splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[0] not in key:
            continue
        side = parts[1].upper()[:1]
        if side not in ("L", "R"):
            continue
        pair = key[parts[0]]
        source = pair["stem"].split("_")[0]
        winner = pair["left"] if side == "L" else pair["right"]
        (out.a if winner == "a" else out.b)[source] += 1
        (out.a_image if winner == "a" else out.b_image)[pair["stem"]] += 1
        out.sides[side] += 1
    return out


def main(argv: list[str]) -> int:
    by_image = argv[:1] == ["--by-image"]
    argv = argv[1:] if by_image else argv
    if not argv or len(argv) % 2:
        print(__doc__.strip().split("\n\n")[-2], file=sys.stderr)
        return 2
    total = Tally()
    for key, answers in zip(argv[::2], argv[1::2], strict=True):
        one = tally(Path(key), Path(answers))
        print(f"{Path(answers).name}: {one.line()}")
        total.add(one)
    if len(argv) > 2:
        print(f"sum of {len(argv) // 2}: {total.line()}")
    if by_image:
        print("\n".join(total.by_image()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
