"""``python -m srlab.web [port]``: the same server as ``srlab serve``."""

import sys

from srlab.web.app import serve_main

sys.exit(serve_main(port=int(sys.argv[1]) if len(sys.argv) > 1 else 7860))
