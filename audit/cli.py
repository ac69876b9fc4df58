"""The `audit` command.

Exit codes: 0 success (policy passed), 1 policy failed or a regression, 2 bad input or an error,
with a one-line reason on stderr (the traceback only with --debug).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Sequence

from audit.errors import AuditInputError


def _train(args: argparse.Namespace) -> int:
    import numpy as np

    from audit import datasets
    from audit.models import train

    data = datasets.load(args.dataset, seed=args.seed)
    options = {} if args.epochs is None else {"epochs": args.epochs}
    model = train(args.arch or ("cnn" if data.kind == "image" else "mlp"), data, seed=args.seed,
                  progress=not args.quiet, **options)
    test = data.part("test")
    accuracy = model.accuracy(test.X, test.y)
    majority = float((test.y == np.bincount(test.y).argmax()).mean())
    path = model.save(args.out)
    history = model.metadata["training"]
    print(f"{data.name}: test accuracy {accuracy:.4f} (majority class {majority:.4f}), "
          f"best epoch {history['best_epoch']} of {len(history['epochs'])}, {history['seconds']:.1f} s")
    print(f"checkpoint written to {os.path.abspath(path)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audit", description="Audit JAX/Flax classifiers: "
                                     "explanations, robustness, fairness, class imbalance.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    p = commands.add_parser("train", help="train a zoo model on a bundled dataset and save a checkpoint")
    p.add_argument("--dataset", required=True, help="credit, breast_cancer, digits or mnist")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--arch", choices=("mlp", "cnn"), help="zoo architecture (default: by data kind)")
    p.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end sooner)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except AuditInputError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"audit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("audit: interrupted", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, not a traceback
        if args.debug:
            traceback.print_exc()
        print(f"audit: error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
