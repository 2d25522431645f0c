"""Training configuration: defaults, JSON files and overrides (plain nested dicts)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from wmhkit.errors import OptionError

__all__ = ["DEFAULT_TRAIN_CONFIG", "CONFIG_DIR", "merge_config", "load_config"]

#: Folder of the committed recipes (``default.json`` trains the shipped model).
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

#: Every setting with its default. Sections: network (see wmhkit.segmentation.network),
#: data (what to train on), training (optimiser and schedule), augment (see
#: wmhkit.train.sampling.AUGMENT_DEFAULTS), two_step (label cleaning).
DEFAULT_TRAIN_CONFIG: dict = {
    "name": "custom",
    "network": {"in_slices": 5, "base_channels": 8, "levels": 4, "norm": "batch", "slice_axis": 2},
    "data": {
        "phantoms": 0,  # number of training phantoms (built-in recipe)
        "phantom_seed_start": 1000,
        "phantom_options": {},  # overrides of wmhkit.train.recipe.PHANTOM_DEFAULTS
        "real_anatomy_per_head": 0,  # lesion-inserted variants of each real head
        "real_healthy_per_head": 0,  # lesion-free variants of each real head (negatives; skull on/off, label empty)
        # Real-head cases that each carry one named training mask: every training mask is placed
        # this many times, the heads taken in turn, so that all masks (the heavy confluent loads
        # too) reach training instead of the few a random draw happens to pick.
        "real_mask_placements": 0,
        "real_t1_dir": None,  # folder of real head T1s (default: ../shared/data/real_t1 if present)
        "validation_phantoms": 4,
        "validation_seed_start": 900000,  # never used for training
        "validation_fraction": 0.1,  # manifest runs: share of cases held out when no phantoms validate
        "corrupt_fraction": 0.0,  # benchmarks: share of training labels corrupted on purpose
        "corrupt_seed": 0,
        # benchmarks: corrupt only labels holding at least this many mL (a label without lesions
        # cannot lose any, so corrupting it would change nothing)
        "corrupt_min_label_ml": 0.0,
        "cache_dir": None,  # where cases are cached (default <out>/cache); runs may share one
        # Grid the network trains on, and then runs on: "mni" (the MNI brain box) or "subject"
        # (the subject's own voxels; segment(space="subject")). Recorded in the checkpoint.
        # Default: the starting model's (training.init_from), else "mni".
        "space": None,
    },
    "training": {
        "steps": 2000,
        "batch_patches": 2,
        "patch_size": [96, 96, 16],
        "lesion_fraction": 0.7,
        # "sr" (forward model on the label grid), "sr_threshold" (the same, scoring whether the
        # footprint average crosses the label's threshold: loss.sr_threshold_loss) or "naive"
        # (label up-sampled to 1 mm)
        "loss": "sr",
        "dice_weight": 1.0,
        "label_threshold": 0.5,  # sr_threshold: footprint share at which a thick voxel is labelled
        "threshold_temperature": 0.02,  # sr_threshold: softness of that threshold
        "plain_sr_weight": 0.0,  # sr_threshold: weight of the plain SR loss added (against unlabelled blobs)
        # Weight of a loss term on the exact lesion mask that synthetic cases carry (BCE + soft Dice
        # on the network's own grid, as the naive loss); cases without one (a real cohort) add nothing.
        # The thick-slice label says only which footprints are half lesion; the exact mask says
        # which voxels darken, which is what faint confluent lesions need.
        "exact_label_weight": 0.0,
        # Initial lesion probability everywhere (output bias = its logit). Starting at 0.5 makes the
        # network spend hundreds of steps unlearning lesions before it can find any.
        "initial_lesion_probability": 0.02,
        "lr": 3e-3,
        # Start from a trained model (a name such as "default", or a checkpoint path) instead of
        # random weights: fine-tuning the shipped model on one's own cohort. Network settings
        # then come from that checkpoint.
        "init_from": None,
        # The stage's result: "best" (highest validation Dice), "last" (the final step) or "ema" (the
        # weights' moving average, with ema_decay). With a handful of validation phantoms the best-Dice pick
        # can be noise (see default_finetune).
        "keep": "best",
        # Exponential moving average of the weights (0 off; e.g. 0.995): written as ema.pt beside
        # last.pt; keep "ema" makes it the stage's result. Fine-tunes on few real heads swing from
        # cautious to over-eager between checkpoints; the average smooths that swing.
        "ema_decay": 0.0,
        "weight_decay": 1e-4,
        "warmup_steps": 100,
        "final_lr_fraction": 0.05,
        "validate_every": 250,
        "checkpoint_every": 250,
        "workers": 1,
        "threads": 2,
        "seed": 0,
        "case_workers": 1,  # processes that build the case cache
    },
    "augment": {},
    "two_step": {
        "enabled": False,
        "z_threshold": 2.5,  # robust z of the unlabelled predicted volume above which a case is flagged (cleaning.py)
        "action": "exclude",  # "exclude" or "downweight"
        "downweight": 0.2,
        "step2_steps": None,  # default: training.steps
        "step2_init": "scratch",  # "scratch" or "step1"
    },
}


def merge_config(base: dict, override: dict | None) -> dict:
    """Recursively merge ``override`` into a copy of ``base``; unknown keys are refused.

    >>> merge_config({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}})
    {'a': {'b': 1, 'c': 3}}
    """
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if key not in out:
            raise OptionError(f"Training config key {key!r} is unknown; valid keys are {', '.join(sorted(out))}.")
        if isinstance(out[key], dict) and isinstance(value, dict) and key not in ("augment", "phantom_options"):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path=None, overrides: dict | None = None) -> dict:
    """Read a JSON recipe (``None`` = defaults only) and apply ``overrides``; returns the full config."""
    config = copy.deepcopy(DEFAULT_TRAIN_CONFIG)
    if path is not None:
        path = Path(path)
        if not path.is_file() and (CONFIG_DIR / f"{path}.json").is_file():
            path = CONFIG_DIR / f"{path}.json"
        if not path.is_file():
            raise OptionError(f"Training config {path} does not exist; give a JSON file such as {CONFIG_DIR / 'default.json'}.")
        try:
            config = merge_config(config, json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise OptionError(f"Training config {path} is not valid JSON (line {exc.lineno}); fix it.") from None
    config = merge_config(config, overrides)
    if config["training"]["loss"] not in ("sr", "sr_threshold", "naive"):
        raise OptionError(f"Training option loss={config['training']['loss']!r} is unknown; use 'sr', 'sr_threshold' or 'naive'.")
    if not (0.0 < float(config["training"]["label_threshold"]) < 1.0 and float(config["training"]["threshold_temperature"]) > 0):
        raise OptionError("Training options label_threshold must lie strictly between 0 and 1 and threshold_temperature must be positive; fix the config.")
    if not float(config["training"]["exact_label_weight"]) >= 0.0:
        raise OptionError("Training option exact_label_weight must be 0 or more (0 turns the exact-label term off).")
    if config["training"]["keep"] not in ("best", "last", "ema"):
        raise OptionError(f"Training option keep={config['training']['keep']!r} is unknown; use 'best', 'last' or 'ema'.")
    if config["training"]["keep"] == "ema" and not 0 < float(config["training"]["ema_decay"]) < 1:
        raise OptionError("Training option keep='ema' needs training.ema_decay between 0 and 1 (e.g. 0.995).")
    if config["two_step"]["action"] not in ("exclude", "downweight"):
        raise OptionError(f"two_step action={config['two_step']['action']!r} is unknown; use 'exclude' or 'downweight'.")
    return config
