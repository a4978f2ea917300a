"""srlab serve: the web demo and HTTP API (``srlab.web``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from srlab.cli import model_file
from srlab.cli.common import int_at_least, pixel_count, set_threads


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="web demo and HTTP API (Gradio + FastAPI)",
                       description="Pick a model and scale, upload, compare with bicubic, "
                                   "download; model cards and training curves; JSON API under "
                                   "/api (see README). Needs the web extra.")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    p.add_argument("--port", type=int_at_least(1, "--port", 65535), default=7860)
    p.add_argument("--max-upload-mb", type=float, default=None, metavar="MB",
                   help="largest accepted upload")
    p.add_argument("--max-pixels", type=pixel_count, default=None, metavar="N",
                   help="largest accepted input image, in pixels (default 25M: a 24 Mpx "
                        "phone photo)")
    p.add_argument("--max-output-pixels", type=pixel_count, default=None, metavar="N",
                   help="largest result, in pixels (default 100M: a 25 Mpx photo at x2); "
                        "larger asks are refused before any work")
    p.add_argument("--concurrency", type=int_at_least(1, "--concurrency"), default=None,
                   metavar="N", help="upscale jobs run at once")
    p.add_argument("--threads", type=int_at_least(1, "--threads"), default=None, metavar="N")
    p.add_argument("--model-file", action="append", type=Path, default=None, metavar="FILE",
                   help="also offer your own model file (.safetensors/.pth, srlab[spandrel]) "
                        "by its file name, selected first (repeatable)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from srlab import web

    set_threads(args.threads)
    for path in args.model_file or []:  # your own model files: cli/model_file.py
        model_file.register(path)
    options = {k: v for k, v in (("max_upload_mb", args.max_upload_mb),
                                  ("max_pixels", args.max_pixels),
                                  ("max_output_pixels", args.max_output_pixels),
                                  ("concurrency", args.concurrency)) if v is not None}
    return web.serve_main(args.host, args.port, **options)
