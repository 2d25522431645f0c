"""One training stage: batches of patches, the loss, validation, checkpoints and resume.

Batches are a pure function of ``(seed, step)``: the patch sampler seeds its generator with
both, so a resumed run draws the very batches an uninterrupted run would have drawn, whatever
the number of loader workers. A stage folder holds ``last.pt``, ``best.pt`` and with ``training.ema_decay`` ``ema.pt`` (network
checkpoints, :func:`wmhkit.segmentation.network.save_checkpoint`), ``train_state.pt``
(optimiser and step, for ``--resume``), ``history.csv`` (one row per validation) and
``history.png``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from wmhkit.io import atomic_path, write_tsv
from wmhkit.segmentation.network import build_network, load_checkpoint, predict_volume, save_checkpoint
from wmhkit.train.cases import load_case
from wmhkit.train.loss import PairBatch, naive_loss, sr_loss, sr_threshold_loss
from wmhkit.train.metrics import segmentation_scores
from wmhkit.train.sampling import sample_patch

__all__ = ["PatchBatches", "network_forward", "predict_case", "run_stage", "validate"]

logger = logging.getLogger(__name__)


class PatchBatches(torch.utils.data.Dataset):
    """Batches of augmented patches, item ``i`` being the batch of step ``start_step + i``.

    Parameters
    ----------
    case_dirs : list of path
        Cached cases (:func:`wmhkit.train.cases.save_case`).
    weights : sequence of float
        Sampling weight of each case (0 excludes it).
    config : dict
        The full training config (``training``, ``network``, ``augment`` sections).
    start_step, steps : int
        The batches of steps ``start_step .. steps - 1``.
    """

    def __init__(self, case_dirs, weights, config: dict, start_step: int, steps: int):
        self.case_dirs = [str(d) for d in case_dirs]
        w = np.asarray(weights, dtype=np.float64)
        self.probabilities = w / w.sum()
        self.config = config
        self.start_step = int(start_step)
        self.steps = int(steps)
        self._cases: dict = {}

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step)

    def _case(self, index: int):
        if index not in self._cases:
            self._cases[index] = load_case(self.case_dirs[index])
        return self._cases[index]

    def __getitem__(self, item: int) -> dict:
        training = self.config["training"]
        step = self.start_step + int(item)
        rng = np.random.default_rng([int(training["seed"]), step])
        naive = training["loss"] == "naive"
        exact = float(training["exact_label_weight"]) > 0.0
        picks = rng.choice(len(self.case_dirs), size=int(training["batch_patches"]), p=self.probabilities)
        patches = [
            sample_patch(self._case(int(i)), rng, patch_size=tuple(training["patch_size"]),
                         in_slices=int(self.config["network"]["in_slices"]),
                         lesion_fraction=float(training["lesion_fraction"]),
                         augment=self.config.get("augment", {}), naive=naive, exact=exact)
            for i in picks
        ]
        size = tuple(training["patch_size"])
        batch = {
            "step": step,
            "image": torch.from_numpy(np.stack([p.image for p in patches])),
            "pairs": PairBatch([p.pairs for p in patches], int(np.prod(size)), labels=[p.target for p in patches]),
            "case_ids": [p.case_id for p in patches],
        }
        if naive:
            batch["naive_target"] = torch.from_numpy(np.stack([p.naive_target for p in patches]))
            batch["naive_valid"] = torch.from_numpy(np.stack([p.naive_valid for p in patches]))
        if exact:
            batch["exact_target"] = torch.from_numpy(np.stack([p.exact_target for p in patches]))
            batch["exact_valid"] = torch.from_numpy(np.stack([p.exact_valid for p in patches]))
        return batch


def network_forward(net: torch.nn.Module, image: torch.Tensor, in_slices: int) -> torch.Tensor:
    """Probabilities ``(B, H, W, D)`` for image blocks ``(B, H, W, D + in_slices - 1)``."""
    batch, height, width, depth_ctx = image.shape
    depth = depth_ctx - in_slices + 1
    stacked = image.permute(0, 3, 1, 2).unfold(1, in_slices, 1)  # (B, D, H, W, in_slices)
    stacked = stacked.permute(0, 1, 4, 2, 3).reshape(batch * depth, in_slices, height, width)
    logits = net(stacked).reshape(batch, depth, height, width)
    return torch.sigmoid(logits).permute(0, 2, 3, 1)


def predict_case(net: torch.nn.Module, case, *, device: str = "cpu") -> np.ndarray:
    """Probabilities of a cached case on its grid, 0 outside the white-matter envelope.

    As in ``wmhkit segment``: false positives the product never reports must not choose the
    best checkpoint (validation) nor count against a label (two-step scoring). Subject-space
    cases keep no alignment, so they are scored over their whole box (which holds the envelope).
    """
    from wmhkit.segmentation.atlas import wm_envelope_mni
    from wmhkit.segmentation.network import MNI_BRAIN_BOX

    envelope = wm_envelope_mni()[MNI_BRAIN_BOX]
    prob = predict_volume(net, case.t1, device=device)
    if case.meta.get("space", "mni") == "mni" and prob.shape == envelope.shape:
        prob[~envelope] = 0.0
    return prob


def validate(net: torch.nn.Module, case_dirs, *, device: str = "cpu") -> pd.DataFrame:
    """Scores at 1 mm (on each case's grid) of the network on cases with an exact lesion mask (:func:`predict_case`)."""
    rows = []
    for folder in case_dirs:
        case = load_case(folder, mmap=False)
        prob = predict_case(net, case, device=device)
        scores = segmentation_scores(prob, case.lesion_mni)
        rows.append({"case_id": case.case_id, **scores})
    net.train()
    return pd.DataFrame(rows)


def _lr_factor(step: int, training: dict, steps: int) -> float:
    warmup = int(training["warmup_steps"])
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    floor = float(training["final_lr_fraction"])
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _summarise(table: pd.DataFrame) -> dict:
    lesioned = table[table["true_voxels"] > 0]
    healthy = table[table["true_voxels"] == 0]
    return {
        "val_dice": float(lesioned["dice"].mean()) if len(lesioned) else float("nan"),
        "val_lesion_f1": float(lesioned["lesion_f1"].mean()) if len(lesioned) else float("nan"),
        "val_avd_pct": float(lesioned["avd_pct"].mean()) if len(lesioned) else float("nan"),
        "val_healthy_fp_ml": float(healthy["pred_voxels"].mean() / 1000.0) if len(healthy) else float("nan"),
    }


def _plot_history(history: pd.DataFrame, path: Path) -> None:
    try:
        from wmhkit.plotting.style import save_figure
        from wmhkit.plotting.training import plot_training_history
    except ImportError:  # plotting is optional
        return
    save_figure(plot_training_history(history), path, dpi=100)


def _ema_model(net: torch.nn.Module, decay: float):
    """An exponential moving average of ``net``'s weights and buffers (None when ``decay`` is 0)."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def run_stage(stage_dir, case_dirs, weights, val_dirs, config: dict, *, steps: int | None = None,
              resume: bool = False, device: str = "cpu", init_from=None, progress: bool | None = None) -> Path:
    """Train one stage and return the path of its best checkpoint (``last.pt`` without validation
    or with ``training.keep = "last"``).

    Parameters
    ----------
    stage_dir : path
        Output folder of the stage.
    case_dirs, weights : list
        Training cases and their sampling weights.
    val_dirs : list
        Validation cases (with exact lesion masks); empty for none.
    config : dict
        Full training config.
    steps : int, optional
        Total steps of the stage (default ``config["training"]["steps"]``).
    resume : bool, default False
        Continue from ``train_state.pt`` when it exists.
    device : str, default "cpu"
    init_from : path, optional
        Checkpoint whose weights start the stage (two-step "step1" initialisation).
    progress : bool, optional
        Show a tqdm bar (default: when stderr is a terminal).
    """
    from tqdm.auto import tqdm

    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    training = config["training"]
    steps = int(steps or training["steps"])
    torch.manual_seed(int(training["seed"]))
    torch.set_num_threads(max(1, int(training["threads"])))
    net = build_network(config["network"])
    if init_from is not None:
        net.load_state_dict(load_checkpoint(init_from)[0].state_dict())
    else:
        prior = float(training.get("initial_lesion_probability", 0.5))
        torch.nn.init.constant_(net.head.bias, math.log(prior / (1.0 - prior)))
    net.to(device).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=float(training["lr"]), weight_decay=float(training["weight_decay"]))
    ema = _ema_model(net, float(training.get("ema_decay", 0.0)))
    start_step, best_dice, history = 0, -1.0, []
    state_path = stage_dir / "train_state.pt"
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=False)
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        start_step, best_dice, history = int(state["step"]), float(state["best_dice"]), list(state["history"])
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])
        logger.info("Resuming %s at step %d (best validation Dice %.3f).", stage_dir, start_step, best_dice)
    dataset = PatchBatches(case_dirs, weights, config, start_step, steps)
    workers = int(training["workers"])
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                         prefetch_factor=2 if workers else None, persistent_workers=False)
    in_slices = int(config["network"]["in_slices"])
    running, n_patches, started = None, 0, time.time()
    metadata = {"name": config.get("name"), "loss": training["loss"], "stage": stage_dir.name,
                "space": config.get("data", {}).get("space") or "mni"}

    def checkpoint(step: int) -> None:
        save_checkpoint(stage_dir / "last.pt", net, config["network"], {**metadata, "step": step})
        if ema is not None:
            save_checkpoint(stage_dir / "ema.pt", ema.module, config["network"],
                            {**metadata, "step": step, "ema_decay": float(training["ema_decay"])})
        with atomic_path(state_path) as tmp:
            torch.save({"net": net.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                        "best_dice": best_dice, "history": history,
                        **({"ema": ema.state_dict()} if ema is not None else {})}, tmp)

    bar = tqdm(total=steps, initial=start_step, disable=None if progress is None else not progress,
               desc=stage_dir.name, unit="step")
    step = start_step
    for batch in loader:
        step = int(batch["step"])
        for group in optimizer.param_groups:
            group["lr"] = float(training["lr"]) * _lr_factor(step, training, steps)
        image = batch["image"].to(device)
        prob = network_forward(net, image, in_slices)
        if training["loss"] == "naive":
            loss = naive_loss(prob, batch["naive_target"].to(device), batch["naive_valid"].to(device),
                              dice_weight=float(training["dice_weight"]))
        elif training["loss"] == "sr_threshold":
            loss = sr_threshold_loss(prob, batch["pairs"].to(device), label_threshold=float(training["label_threshold"]),
                                     temperature=float(training["threshold_temperature"]),
                                     dice_weight=float(training["dice_weight"]),
                                     plain_weight=float(training["plain_sr_weight"]))
        else:
            loss = sr_loss(prob, batch["pairs"].to(device), dice_weight=float(training["dice_weight"]))
        if "exact_target" in batch:
            loss = loss + float(training["exact_label_weight"]) * naive_loss(
                prob, batch["exact_target"].to(device), batch["exact_valid"].to(device),
                dice_weight=float(training["dice_weight"]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update_parameters(net)
        value = float(loss.detach())
        running = value if running is None else 0.98 * running + 0.02 * value
        n_patches += image.shape[0]
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}")
        done = step + 1
        if done % 25 == 0:
            logger.info("%s step %d/%d: running loss %.4f, %.2f patches/s", stage_dir.name, done, steps, running,
                        n_patches / (time.time() - started))
        if done % int(training["validate_every"]) == 0 or done == steps:
            row = {"step": done, "train_loss": running, "lr": optimizer.param_groups[0]["lr"],
                   "elapsed_s": time.time() - started, "patches_per_s": n_patches / (time.time() - started)}
            if val_dirs:
                table = validate(net, val_dirs, device=device)
                row.update(_summarise(table))
                if row["val_dice"] > best_dice:
                    best_dice = row["val_dice"]
                    save_checkpoint(stage_dir / "best.pt", net, config["network"],
                                    {**metadata, "step": done, **{k: v for k, v in row.items() if k.startswith("val_")}})
            history.append(row)
            frame = pd.DataFrame(history)
            write_tsv(frame, stage_dir / "history.tsv")
            if val_dirs:
                _plot_history(frame, stage_dir / "history.png")
            logger.info("step %d: %s", done, ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "step"))
        if done % int(training["checkpoint_every"]) == 0 or done == steps:
            checkpoint(done)
    bar.close()
    if step + 1 < steps and len(dataset):
        checkpoint(step + 1)
    if training.get("keep") == "ema" and (stage_dir / "ema.pt").is_file():
        return stage_dir / "ema.pt"
    best = stage_dir / "best.pt"
    if training.get("keep", "best") == "last" or not best.is_file():
        return stage_dir / "last.pt"
    return best
