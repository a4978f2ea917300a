"""srlab export: a network to ONNX, checked against PyTorch (``srlab.runtime.onnx``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from srlab.cli.common import check_model, int_at_least, print_error


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX (checked against PyTorch)",
                       description="Export a registered model's network (re-parameterised, "
                                   "dynamic height/width) to ONNX, then check ONNX Runtime "
                                   "against PyTorch on a random image of another size; a max "
                                   "abs difference above 1e-3 is an error. Luma models export "
                                   "Y -> Y: colour handling stays in srlab. Needs "
                                   "pip install 'srlab[onnx]'.")
    p.add_argument("model", metavar="MODEL", help="registered model (see 'srlab models')")
    p.add_argument("-s", "--scale", type=int, choices=(2, 3, 4), default=4,
                   help="upscaling factor (default: 4)")
    p.add_argument("--onnx", type=Path, required=True, metavar="FILE", help="output .onnx file")
    p.add_argument("--weights", type=Path, default=None, metavar="FILE",
                   help="weights file instead of the shipped weights")
    p.add_argument("--opset", type=int_at_least(13, "--opset"), default=17, metavar="N",
                   help="ONNX opset (default: 17)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    model = check_model(args.model, args.scale)
    from srlab.runtime.onnx import OnnxError, export_onnx

    try:
        export_onnx(model, args.scale, args.onnx, weights=args.weights, opset=args.opset)
    except OnnxError as exc:  # missing packages or a failed parity check: exit 1, one line
        print_error(str(exc))
        return 1
    return 0
