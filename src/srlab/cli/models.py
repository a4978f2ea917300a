"""srlab models: the zoo as shipped, as a table (``srlab.zoo.catalog``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the registered models, their weights and measured quality",
        description="Every registered model: family, scales, parameter count (at x4, or the "
                    "first scale), which scales have shipped weights, the Set5 PSNR (Y) "
                    "recorded in the shipped weights' metadata, and whether it is trained. "
                    "* marks the default model.",
    )
    p.add_argument("--file", type=Path, default=None, metavar="FILE",
                   help="describe your own model file instead (.safetensors or .pth): "
                        "architecture, scale, parameters, input channels, size multiple, "
                        "tiling, licence if the file states one, sha256")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--readme", type=Path, default=None, metavar="FILE",
                   help="write the markdown table into FILE between '<!-- srlab:models -->' "
                        "and '<!-- /srlab:models -->'")
    p.set_defaults(handler=run)


def _format_params(n: int) -> str:
    if n == 0:
        return "0"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    return f"{n / 1e3:.1f}K"


def model_rows() -> list[dict[str, str]]:
    """The table ``srlab models`` prints, as rows of strings, from ``zoo.catalog``."""
    from srlab.zoo.catalog import entry
    from srlab.zoo.registry import DEFAULT_MODEL, MODELS

    rows = []
    for name, spec in MODELS.items():  # registry order, auto excluded (it is not a network)
        e = entry(name)
        shipped = [v for _, v in sorted(e.variants.items()) if v.path is not None]
        readable = [v for v in shipped if not v.corrupt and v.meta is not None]
        # the count of the weights that ship (x4 where it ships), not of an untrained default
        ship_scales = [v.scale for v in readable]
        first = (4 if 4 in ship_scales else ship_scales[0]) if ship_scales else \
            (4 if 4 in spec.scales else spec.scales[0])
        params = e.variants[first].params
        if params == 0:
            weights, status = "n/a", "classical"
        else:
            weights = " ".join(f"x{v.scale}" + ("(corrupt)" if v.corrupt else "")
                               for v in shipped) or "none"
            trained = any(v.meta.trained for v in readable)
            status = "trained" if trained else (f"needs {spec.needs}" if spec.needs
                                                else "untrained")
        psnr = " ".join(f"x{v.scale} {v.set5_psnr:.2f}" for v in readable
                        if v.set5_psnr is not None) or "-"
        minutes = " ".join(f"x{v.scale} {v.meta.total_seconds / 60:.0f}" for v in readable
                           if v.meta.train_seconds) or "-"
        rows.append({
            "model": name + (" *" if name == DEFAULT_MODEL else ""),
            "family": spec.family,
            "scales": ",".join(str(s) for s in spec.scales),
            "params": _format_params(params) + ("" if first == 4 else f" (x{first})"),
            "weights": weights,
            "Set5 PSNR": psnr,
            "train min": minutes,
            "status": status,
        })
    return rows


def run(args: argparse.Namespace) -> int:
    if args.file is not None:  # your own model file (cli/model_file.py)
        from srlab.cli.model_file import describe

        print(describe(args.file))
        return 0
    rows = model_rows()
    cols = ["model", "family", "scales", "params", "weights", "Set5 PSNR", "train min", "status"]
    if args.markdown or args.readme:
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(row[c] for c in cols) + " |" for row in rows]
        text = "\n".join(lines) + (
            "\n\n\\* default model. Made by `srlab models --markdown`; params of the shipped "
            "weights at x4, else at the scale in brackets; Set5 PSNR (Y, border = scale) from "
            "each shipped weights file's metadata, measured by `srlab ship`; train min: CPU "
            "minutes of the run that made the file plus those recorded in the weights it "
            "started from (a fine-tune or a grown net counts its parents' minutes too, where "
            "recorded; weights blended by `srlab blend` the sum of both files' records, "
            "history they share counted in each).")
        if args.readme:
            from srlab.eval.tables import update_readme

            update_readme(args.readme, "models", text)
        print(text)
        return 0
    cells = [[row[c] for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print("* default model. params of the shipped weights at x4, else at the scale shown. "
          "Set5 PSNR: Y channel, "
          "border = scale, from the shipped weights' metadata. train min: CPU minutes.")
    return 0
