"""``python -m helpers.training``: the command line that fine-tunes (also under torchrun, accelerate)."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import fields
from pathlib import Path

from helpers.core import console, presets
from helpers.core.diskspace import DiskFullError
from helpers.training.losses import LOSSES
from helpers.training.result import TrainingError
from helpers.training.settings import TrainConfig
from helpers.training.trainer import finetune


def main(argv: list[str] | None = None) -> None:
    """python -m helpers.training --pairs runs/smoke/pairs --output runs/smoke/model (also under torchrun)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--pairs", required=True, type=Path, help="pairs DatasetDict folder (save_to_disk)")
    parser.add_argument("--output", required=True, type=Path, help="where the fine-tuned model is saved")
    parser.add_argument("--model", default=None, help=f"base model: a preset ({', '.join(presets.PRESETS)}), "
                        f"hub id or folder (default: ${presets.MODEL_ENV} or {presets.DEFAULT_PRESET})")
    parser.add_argument("--profile", default=None, help="smoke | workshop | full (default: KIT_PROFILE)")
    parser.add_argument("--checkpoints", type=Path, default=None, help="checkpoint folder")
    parser.add_argument("--no-resume", action="store_true", help="start over, ignoring checkpoints")
    parser.add_argument("--push-to-hub", default=None, metavar="REPO_ID", help="push when HF_TOKEN is set")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--max-seq-length", type=int)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--eval-steps", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--dims", type=lambda s: [int(d) for d in s.split(",")], help="e.g. 768,256,64")
    parser.add_argument("--loss", choices=list(LOSSES))
    parser.add_argument("--mini-batch-size", type=int)
    parser.add_argument("--gather-across-devices", action=argparse.BooleanOptionalAction, default=None,
                        help="several processes: every process's passages are negatives (default: on)")
    parser.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument("--hard-negatives", type=int, help="mined negatives per question (default 0)")
    parser.add_argument("--tsdae-steps", type=int,
                        help="steps of TSDAE on the chunks before fine-tuning (default 0: none)")
    parser.add_argument("--corpus-rotation", action=argparse.BooleanOptionalAction, default=None,
                        help="rotate onto the chunks' principal directions first (default: the preset's)")
    parser.add_argument("--merge-alphas", type=lambda s: [float(a) for a in s.split(",") if a],
                        help="α grid for the merge with the start, e.g. 0,0.5,1 ('': no merge)")
    parser.add_argument("--merge-max-alpha", type=float,
                        help="the most of the fine-tune the merge may save (default 0.75; 1: no guard)")
    args = parser.parse_args(argv)
    console.kit_lines_only()  # this command line is an edge: the library logs, and leaves logging alone
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if getattr(args, f.name, None) is not None}
    try:
        cfg = TrainConfig.from_profile(args.profile, preset=presets.resolve(args.model), **overrides)
        result = finetune(args.pairs, args.output, model_id=args.model, config=cfg, resume=not args.no_resume,
                          checkpoint_dir=args.checkpoints, push_to_hub=bool(args.push_to_hub),
                          hub_model_id=args.push_to_hub)
    except (TrainingError, DiskFullError, FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result.summary(), indent=2))


if __name__ == "__main__":
    main()
