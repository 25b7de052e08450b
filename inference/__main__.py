"""`python -m inference`: run the server with settings from FLASHHEAD_* (flags override)."""

from __future__ import annotations

import argparse
import sys

from inference.backends import BACKEND_NAMES, MODEL_TYPES
from inference.config import from_env
from inference.errors import InferenceError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference", description=__doc__)
    parser.add_argument("--host", help="bind address (FLASHHEAD_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (FLASHHEAD_PORT, default 8000)")
    parser.add_argument("--backend", choices=BACKEND_NAMES, help="FLASHHEAD_BACKEND")
    parser.add_argument("--model-type", choices=MODEL_TYPES, help="FLASHHEAD_MODEL_TYPE")
    parser.add_argument("--max-streams", type=int, help="FLASHHEAD_MAX_STREAMS")
    args = parser.parse_args(argv)
    try:
        config = from_env(host=args.host, port=args.port, backend=args.backend, model_type=args.model_type,
                          max_streams=args.max_streams)
        from inference.server import run

        return run(config)
    except InferenceError as error:
        print(f"error: {error.message}", file=sys.stderr)
        if error.remedy:
            print(f"  fix: {error.remedy}", file=sys.stderr)
        return 2 if error.code == "config" else 1


if __name__ == "__main__":
    sys.exit(main())
