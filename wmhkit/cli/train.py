"""``wmhkit train``: train a lesion network from T1 + thick-slice FLAIR labels, or by a recipe.

Examples::

    wmhkit train --manifest cases.csv --out runs/mine
    wmhkit train --config wmhkit/train/configs/default.json --out runs/default
    wmhkit train --config default --out runs/default --resume
"""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a lesion network from 3D T1 and 2D FLAIR labels (super-resolution loss, two-step cleaning)",
        description=(
            "Train the 2.5D lesion network. Each manifest row names a 3D T1, a 2D FLAIR, a lesion label on the "
            "FLAIR grid and optionally a 4x4 T1-to-FLAIR world transform (text file); without it the FLAIR is "
            "registered to the T1 (rigid). A --config recipe can add synthetic phantoms; the shipped model is "
            "trained with wmhkit/train/configs/default.json, then fine-tuned with default_finetune.json."
        ),
    )
    parser.add_argument("--manifest", help="CSV with columns t1, flair, label[, transform, case_id]")
    parser.add_argument("--config", help="JSON recipe (path, or the name of a bundled one such as 'default')")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, logs, flagged cases, model.pt)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    parser.add_argument("--steps", type=int, help="training steps per stage (overrides the config)")
    parser.add_argument("--loss", choices=("sr", "sr_threshold", "naive"),
                        help="super-resolution loss (default), its label-threshold form, or naive up-sampled labels")
    parser.add_argument("--two-step", dest="two_step", action="store_true", default=None,
                        help="score labels after step 1, flag outliers, retrain on the cleaned set")
    parser.add_argument("--one-step", dest="two_step", action="store_false", help="a single training stage")
    parser.add_argument("--init-from", dest="init_from", metavar="MODEL",
                        help="fine-tune a trained model (a name such as 'default', or a .pt path) instead of starting from random weights")
    parser.add_argument("--workers", type=int, help="patch-loading worker processes (default from config, 1)")
    parser.add_argument("--threads", type=int, help="torch threads for training (default from config, 2)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=JSON",
                        help="override any config value, e.g. --set training.lr=0.001 (repeatable)")
    parser.set_defaults(func=run)


def _overrides(args) -> dict:
    from wmhkit.errors import OptionError

    out: dict = {}
    training = {}
    if args.steps is not None:
        training["steps"] = args.steps
    if args.loss:
        training["loss"] = args.loss
    if args.init_from:
        training["init_from"] = args.init_from
    if args.workers is not None:
        training["workers"] = args.workers
    if args.threads is not None:
        training["threads"] = args.threads
    if training:
        out["training"] = training
    if args.two_step is not None:
        out["two_step"] = {"enabled": bool(args.two_step)}
    for item in args.set:
        key, _, raw = item.partition("=")
        parts = key.split(".")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if not raw or not key or (len(parts) < 2 and not isinstance(value, dict)):
            raise OptionError(f"--set {item!r} must look like section.key=value, e.g. training.lr=0.001.")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]].update(value)
        else:
            node[parts[-1]] = value
    return out


def run(args: argparse.Namespace) -> int:
    from wmhkit.errors import OptionError
    from wmhkit.train import load_config, train

    if not args.manifest and not args.config:
        raise OptionError("wmhkit train needs --manifest (your cases) or --config (a recipe such as 'default').")
    config = load_config(args.config, _overrides(args))
    result = train(config, args.out, manifest=args.manifest, resume=args.resume, device=args.device)
    print(f"model: {result.model_path}")
    if len(result.history) and "val_dice" in result.history:
        last = result.history.iloc[-1]
        print(f"validation at step {int(last['step'])}: Dice {last['val_dice']:.3f}, "
              f"lesion F1 {last.get('val_lesion_f1', float('nan')):.3f}")
    if result.flagged is not None:
        print(f"flagged cases: {int(result.flagged['flagged'].sum())} of {len(result.flagged)} "
              f"(table: {args.out}/flagged.tsv)")
    return 0
