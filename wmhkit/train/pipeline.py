"""``wmhkit train`` end to end: build the case cache, train step 1, clean labels, train step 2.

Run folder layout::

    <out>/config.json        the full config used
    <out>/cache/<case_id>/   cached training and validation cases
    <out>/cases.tsv          one row per case: role, kind, provenance, registration quality
    <out>/step1/             first training stage (see wmhkit.train.loop)
    <out>/flagged.tsv        two-step: label checks (mL, displacement), flag and reason per case
    <out>/step2/             second stage on the cleaned or re-weighted set
    <out>/model.pt           the final model (best validation Dice of the last stage)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from wmhkit.errors import ModelError, OptionError
from wmhkit.io import write_json, write_tsv
from wmhkit.train.cases import load_case, save_case

__all__ = ["TrainResult", "train", "build_cases", "choose_corrupted", "corrupt_label", "default_real_t1_dir",
           "training_heads"]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training run produced."""

    out_dir: Path
    model_path: Path
    history: pd.DataFrame
    flagged: pd.DataFrame | None = None
    cases: pd.DataFrame = field(default_factory=pd.DataFrame)


def default_real_t1_dir() -> Path | None:
    """``../shared/data/real_t1`` beside the source checkout (or ``$WMHKIT_REAL_T1_DIR``), if it exists."""
    from wmhkit.synth.real_masks import shared_data_dir

    return shared_data_dir("real_t1", "WMHKIT_REAL_T1_DIR")


def training_heads(real_dir, exclude=None) -> list[Path]:
    """The real head T1s in ``real_dir`` (sorted) except those whose stem is in ``exclude``."""
    if real_dir is None or not Path(real_dir).is_dir():
        return []
    excluded = set(exclude or [])
    return [h for h in sorted(Path(real_dir).glob("*.nii*")) if h.name.split(".")[0] not in excluded]


def _build_one(job: tuple) -> str:
    """Build and cache one case (runs in a worker process); returns its folder."""
    kind, arg, options, cache, case_id = job
    folder = Path(cache) / case_id
    if (folder / "case.json").is_file():
        cached_space = json.loads((folder / "case.json").read_text()).get("meta", {}).get("space", "mni")
        if cached_space != options["space"]:
            raise OptionError(f"Cached case {folder} was built for space {cached_space!r}, not "
                              f"{options['space']!r}; give this run its own data.cache_dir.")
        return str(folder)
    from wmhkit.train import recipe

    if kind == "phantom":
        case = recipe.phantom_case(int(arg), options, case_id=case_id)
    elif kind == "real":
        head, seed = arg
        try:
            case = recipe.real_anatomy_case(head, int(seed), options, case_id=case_id)
        except NotImplementedError:
            logger.warning("Real-anatomy case %s skipped: wmhkit.synth.insert_lesions is not available.", case_id)
            return ""
    else:
        from wmhkit.train.manifest import manifest_case

        case = manifest_case(arg, seed=len(case_id), space=options["space"])
    return str(save_case(case, cache))


def corrupt_label(label: np.ndarray, slice_axis: int, rng: np.random.Generator, kind: str | None = None):
    """A label corrupted on purpose (benchmarks of the two-step cleaning), and the kind used.

    ``kind`` (drawn at random when None): "shift" moves the label 6-10 voxels along each in-plane
    axis, "drop" keeps each lesion with probability 0.25, "spurious" adds 12 blobs of 8 x 8
    voxels on single slices anywhere in the grid.
    """
    from scipy import ndimage

    label = np.asarray(label, dtype=np.float32)
    kind = str(rng.choice(["shift", "drop", "spurious"])) if kind is None else kind
    if kind == "shift":
        shift = [0 if a == slice_axis else int(rng.choice([-1, 1]) * rng.integers(6, 11)) for a in range(3)]
        return np.roll(label, shift, axis=(0, 1, 2)), kind
    if kind == "drop":
        lab, n = ndimage.label(label > 0.5)
        keep = rng.random(n + 1) < 0.25
        keep[0] = False
        return keep[lab].astype(np.float32), kind
    if kind != "spurious":
        raise OptionError(f"Unknown label corruption {kind!r}; use shift, drop or spurious.")
    blobs = np.zeros_like(label)
    inside = np.argwhere(label >= 0)
    for _ in range(12):
        c = inside[rng.integers(len(inside))]
        sl = tuple(slice(max(0, x - 4), x + 4) for x in c[:2]) + (slice(c[2], c[2] + 1),)
        blobs[sl] = 1.0
    return np.maximum(label, blobs), kind


def _label_ml(folder) -> float:
    """Lesion volume (mL) of a cached case's label, on the label grid."""
    from wmhkit.train.cleaning import label_voxel_mm

    case = load_case(folder)
    return float(np.count_nonzero(np.asarray(case.label) > 0.5) * np.prod(label_voxel_mm(case)) / 1000.0)


def choose_corrupted(folders, roles, fraction: float, min_label_ml: float, rng: np.random.Generator) -> set:
    """Indices of the training cases a benchmark corrupts: ``fraction`` of all training cases,
    drawn among those whose label holds at least ``min_label_ml`` mL (fewer when too few do).

    A case already corrupted by an earlier call stays eligible, so reruns choose the same cases.
    """
    train_idx = [i for i, role in enumerate(roles) if role == "train"]
    n_corrupt = int(round(fraction * len(train_idx)))
    if n_corrupt and min_label_ml > 0:
        train_idx = [i for i in train_idx
                     if (Path(folders[i]) / "corrupted.txt").is_file() or _label_ml(folders[i]) >= min_label_ml]
        n_corrupt = min(n_corrupt, len(train_idx))
    return set(rng.choice(train_idx, size=n_corrupt, replace=False).tolist()) if n_corrupt else set()


def _corrupt(folder: Path, rng: np.random.Generator) -> str:
    """Corrupt a cached case's label in place (benchmarks); returns the kind."""
    slice_axis = json.loads((folder / "case.json").read_text())["geometry"]["slice_axis"]
    label, kind = corrupt_label(np.load(folder / "label.npy"), slice_axis, rng)
    np.save(folder / "label.npy", label.astype(np.float16))
    from wmhkit.train.cases import label_lesion_points

    np.save(folder / "lesion_points.npy", label_lesion_points(load_case(folder).geometry, label))
    return kind


def _mask_placement_jobs(data: dict, options: dict, heads: list[Path], cache_dir) -> list[tuple]:
    """Case jobs for ``data.real_mask_placements``: each training mask that many times, heads in turn."""
    placements = int(data.get("real_mask_placements", 0))
    if not placements or not heads:
        return []
    from wmhkit.synth.real_masks import real_mask_paths, stem

    masks = real_mask_paths(options.get("real_mask_dir"), role="train")
    if not masks:
        logger.warning("data.real_mask_placements is set but no training lesion mask was found; none placed.")
    jobs = []
    for k in range(placements):
        for i, mask in enumerate(masks):
            head = heads[(i + k) % len(heads)]
            # One seed per placement: the head's warp, the contrast and the label grid differ each time.
            seed = int(data["phantom_seed_start"]) + 60000 + 1000 * k + i
            jobs.append(("real", (str(head), seed), {**options, "real_mask_fixed": str(mask)}, str(cache_dir),
                         f"mask-{stem(head)}-{stem(mask)}-{seed}"))
    return jobs


def build_cases(config: dict, cache_dir, *, manifest=None, progress: bool | None = None) -> pd.DataFrame:
    """Build (or reuse) the cached cases of a run; returns the case table (role, case_dir, ...)."""
    from tqdm.auto import tqdm

    from wmhkit.io import code_fingerprint

    data = config["data"]
    cache_dir = Path(cache_dir)
    jobs, roles = [], []
    options = {**data.get("phantom_options", {}), "space": data.get("space") or "mni"}
    if manifest is not None:
        from wmhkit.train.manifest import read_manifest

        table = read_manifest(manifest)
        rng = np.random.default_rng(int(config["training"]["seed"]))
        n_val = 0 if data["validation_phantoms"] else int(round(len(table) * float(data["validation_fraction"])))
        val_rows = set(rng.choice(len(table), size=n_val, replace=False).tolist()) if n_val else set()
        for i, row in table.iterrows():
            jobs.append(("manifest", row.to_dict(), options, str(cache_dir), str(row["case_id"])))
            roles.append("validation" if i in val_rows else "train")
    for k in range(int(data["phantoms"])):
        seed = int(data["phantom_seed_start"]) + k
        jobs.append(("phantom", seed, options, str(cache_dir), f"phantom-{seed}"))
        roles.append("train")
    if int(data["real_anatomy_per_head"]) or int(data.get("real_healthy_per_head", 0)) or \
            int(data.get("real_mask_placements", 0)):
        real_dir = Path(data["real_t1_dir"]) if data.get("real_t1_dir") else default_real_t1_dir()
        heads = training_heads(real_dir, options.get("exclude_heads"))
        if not heads:
            logger.warning("No real head T1 found (real_t1_dir=%s); skipping real-anatomy cases.", real_dir)
        for head in heads:
            stem = head.name.split(".")[0]
            for k in range(int(data["real_anatomy_per_head"])):
                seed = int(data["phantom_seed_start"]) + 50000 + k
                jobs.append(("real", (str(head), seed), options, str(cache_dir), f"real-{stem}-{seed}"))
                roles.append("train")
            for k in range(int(data.get("real_healthy_per_head", 0))):
                seed = int(data["phantom_seed_start"]) + 70000 + k
                jobs.append(("real", (str(head), seed), {**options, "real_healthy": True}, str(cache_dir),
                             f"healthy-{stem}-{seed}"))
                roles.append("train")
        placed = _mask_placement_jobs(data, options, heads, cache_dir)
        jobs += placed
        roles += ["train"] * len(placed)
    for k in range(int(data["validation_phantoms"])):
        seed = int(data["validation_seed_start"]) + k
        jobs.append(("phantom", seed, options, str(cache_dir), f"phantom-{seed}"))
        roles.append("validation")
    if not jobs:
        raise OptionError("The training config makes no cases; give --manifest or set data.phantoms above 0.")
    workers = max(1, int(config["training"].get("case_workers", 1)))
    bar = tqdm(total=len(jobs), desc="cases", disable=None if progress is None else not progress)
    folders = []
    if workers == 1:
        for job in jobs:
            folders.append(_build_one(job))
            bar.update(1)
    else:
        with ProcessPoolExecutor(workers) as pool:
            for folder in pool.map(_build_one, jobs):
                folders.append(folder)
                bar.update(1)
    bar.close()
    kept = [(f, r) for f, r in zip(folders, roles) if f]
    folders, roles = [f for f, _ in kept], [r for _, r in kept]
    rows, other_code = [], []
    corrupt_rng = np.random.default_rng(int(data.get("corrupt_seed", 0)))
    corrupt = choose_corrupted(folders, roles, float(data.get("corrupt_fraction", 0.0)),
                               float(data.get("corrupt_min_label_ml", 0.0)), corrupt_rng)
    for i, (folder, role) in enumerate(zip(folders, roles)):
        info = json.loads((Path(folder) / "case.json").read_text())
        if info.get("code_fingerprint") != code_fingerprint():
            other_code.append(info["case_id"])
        meta = info.get("meta", {})
        corruption = ""
        if i in corrupt:
            marker = Path(folder) / "corrupted.txt"
            if marker.is_file():
                corruption = marker.read_text().strip()
            else:
                corruption = _corrupt(Path(folder), corrupt_rng)
                marker.write_text(corruption)
        rows.append({"case_id": info["case_id"], "role": role, "case_dir": folder, "kind": meta.get("kind", ""),
                     "registration_quality": meta.get("registration_quality", np.nan),
                     "alignment_quality": meta.get("alignment_quality", np.nan), "corruption": corruption})
    if other_code:  # reused as they are: rebuilding silently could cost hours
        logger.warning("%d of %d cached cases in %s were built by other wmhkit code (e.g. %s); delete them, or "
                       "give data.cache_dir a new folder, to rebuild them with this code.",
                       len(other_code), len(rows), cache_dir, other_code[0])
    return pd.DataFrame(rows)


def _starting_checkpoint(config: dict):
    """The checkpoint ``training.init_from`` names (a model name or path), or None to start from scratch.

    Fine-tuning keeps the starting model's architecture: ``config["network"]`` is replaced by
    the checkpoint's own (in place), so the saved run describes the network it trained; and,
    when ``data.space`` is not set, its space (the grid its cases are built on).
    """
    name = config["training"].get("init_from")
    if not name:
        return None
    from wmhkit.segmentation.models import model_path
    from wmhkit.segmentation.network import DEFAULT_CONFIG, load_checkpoint

    path = model_path(name)
    _, network, metadata = load_checkpoint(path)
    config["network"] = {key: network[key] for key in DEFAULT_CONFIG if key != "arch" and key in network}
    # A fine-tuned model keeps running where its starting model ran, unless the config says otherwise.
    if config["data"].get("space") is None:
        config["data"]["space"] = metadata.get("space") or "mni"
    return path


def train(config: dict, out_dir, *, manifest=None, resume: bool = False, device: str = "cpu",
          progress: bool | None = None) -> TrainResult:
    """Train a lesion network by the given recipe (see the module docstring for the run folder).

    Parameters
    ----------
    config : dict
        Full config (:func:`wmhkit.train.config.load_config`).
    out_dir : path
        Run folder; created.
    manifest : path, optional
        CSV of user cases (t1, flair, label[, transform]).
    resume : bool, default False
        Reuse the cache and continue interrupted stages; without it an existing run folder with a
        trained stage is refused.
    device : str, default "cpu"
        Torch device ("cuda" when available).
    progress : bool, optional
        Progress bars (default: when stderr is a terminal).
    """
    from wmhkit.segmentation.network import load_checkpoint
    from wmhkit.train.cleaning import case_weights, flag_outliers, score_cases
    from wmhkit.train.loop import run_stage

    out_dir = Path(out_dir)
    start_from = _starting_checkpoint(config)
    if not resume and (out_dir / "step1" / "train_state.pt").is_file():
        raise OptionError(f"Run folder {out_dir} already holds a training run; pass --resume or choose another --out.")
    config["data"]["space"] = config["data"].get("space") or "mni"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(config, out_dir / "config.json")
    cache = Path(config["data"]["cache_dir"]) if config["data"].get("cache_dir") else out_dir / "cache"
    cases = build_cases(config, cache, manifest=manifest, progress=progress)
    write_tsv(cases, out_dir / "cases.tsv")
    train_dirs = cases.loc[cases["role"] == "train", "case_dir"].tolist()
    val_dirs = [d for d in cases.loc[cases["role"] == "validation", "case_dir"] if load_case(d).lesion_mni is not None]
    if not train_dirs:
        raise OptionError("No training cases; add rows to the manifest or phantoms to the config.")
    best = run_stage(out_dir / "step1", train_dirs, np.ones(len(train_dirs)), val_dirs, config, resume=resume,
                     device=device, init_from=start_from, progress=progress)
    flagged = None
    two_step = config["two_step"]
    if two_step["enabled"]:
        net = load_checkpoint(best, device=device)[0]
        scores = score_cases(net, train_dirs, device=device)
        flagged = flag_outliers(scores, float(two_step["z_threshold"]))
        flagged = flagged.merge(cases[["case_id", "corruption"]], on="case_id", how="left")
        write_tsv(flagged, out_dir / "flagged.tsv")
        logger.info("Two-step: %d of %d cases flagged.", int(flagged["flagged"].sum()), len(flagged))
        weights = case_weights(flagged, two_step["action"], float(two_step["downweight"]))
        if weights.sum() <= 0:
            raise ModelError("Two-step cleaning flagged every case; lower two_step.z_threshold or check the labels.")
        init = best if two_step["step2_init"] == "step1" else start_from
        best = run_stage(out_dir / "step2", train_dirs, weights, val_dirs, config, steps=two_step["step2_steps"],
                         resume=resume, device=device, init_from=init, progress=progress)
    shutil.copyfile(best, out_dir / "model.pt")
    stage = best.parent
    history_path = stage / "history.tsv"
    history = pd.read_csv(history_path, sep="\t") if history_path.is_file() else pd.DataFrame()
    return TrainResult(out_dir, out_dir / "model.pt", history, flagged, cases)
