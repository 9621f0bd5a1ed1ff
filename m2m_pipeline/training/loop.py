"""The training loop of g and f: one function, epochs of planned batches, M2m pools swapped in."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..datasets import PreparedData, Split
from ..metrics import balanced_metrics
from ..plan import EpochPlan, apply_augment, make_plan
from ..layout import BEST_CHECKPOINT, LAST_CHECKPOINT
from ..utils import M2mError, atomic_write_bytes, default_device, progress_bar, rng_for, state_hash
from .checkpoint import model_config, build_model, model_from_checkpoint, save_checkpoint
from .cmo import cmo_active, draw_cutmix, minority_plan, mixed_loss, paste
from ..pools.reuse import swap_rows
from .device_data import DeviceImages, device_batch_inputs
from .losses import class_weights, make_criterion, posthoc_offsets
from .methods import MethodSpec, check_method
from .options import FitOptions
from .schedule import Preset, lr_at


@torch.no_grad()
def predict(model: nn.Module, data: PreparedData, split: Split, *, batch_size: int = 1024,
            device: torch.device | None = None, logit_offset: torch.Tensor | None = None) -> np.ndarray:
    """Predicted labels of ``split``: argmax_k z_k (+ ``logit_offset``_k, a post-hoc logit
    adjustment, when given); the model is in eval mode for the call and restored after."""
    device = device or next(model.parameters()).device
    offset = logit_offset.to(device) if logit_offset is not None else None
    was_training = model.training
    model.eval()
    preds = []
    for start in range(0, len(split), batch_size):
        x = data.to_float(split.x[start:start + batch_size]).to(device)
        z = model(x)
        if offset is not None:
            z = z + offset
        preds.append(z.argmax(dim=1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def smote_split(split: Split, class_counts: np.ndarray, seed: int, k_neighbors: int = 5) -> Split:
    """Over-sample every class to the largest with imbalanced-learn's SMOTE on flattened inputs.

    uint8 images come back rounded to uint8. ``k_neighbors`` shrinks to the smallest class size
    minus one where a class is smaller (SMOTE needs that many neighbours of the same class).
    """
    from imblearn.over_sampling import SMOTE

    k = int(min(k_neighbors, int(np.min(class_counts)) - 1))
    if k < 1:
        raise M2mError("SMOTE needs at least 2 training samples in every class")
    flat = split.x.reshape(len(split), -1).astype(np.float32)
    sm = SMOTE(k_neighbors=k, random_state=int(rng_for(seed, "smote").integers(2**31 - 1)))
    xr, yr = sm.fit_resample(flat, split.y)
    if split.x.dtype == np.uint8:
        xr = np.rint(xr)   # interpolations x + u (x_nn - x), u in [0, 1), of pixels in 0..255 stay in range
    return Split(xr.reshape(-1, *split.x.shape[1:]).astype(split.x.dtype), yr)


def batch_inputs(data: PreparedData, train: Split, plan: EpochPlan, slots: np.ndarray,
                 swaps: dict[int, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """The training batch of ``slots``: real rows with their planned augmentation, and in every slot
    that ``swaps`` names, its pool row's input and label (x* labelled with the target k for M2m;
    what an ablation's rule says otherwise, pools/rules.py)."""
    rows = plan.order[slots]
    x = data.to_float(apply_augment(train.x[rows], plan.aug[slots], data.augment))
    y = torch.from_numpy(train.y[rows].astype(np.int64))
    positions, xs, labels = swap_rows(slots, swaps)
    if len(positions):
        # one copy for the batch's swapped rows, not one per row
        x[positions] = torch.from_numpy(xs)
        y[positions] = torch.from_numpy(labels)
    return x, y



# Per-epoch counters every history row carries (0 where the epoch uses no pool), so the rows of
# every method have the same keys and plot together.
POOL_COUNTERS = ("n_attempts", "n_accepted", "n_used")
COMPLETE_MARKER = "complete.json"


def run_status(run_dir: str | Path) -> dict[str, Any] | None:
    """The completion marker of a run folder (written when fit reached its last epoch), or None."""
    path = Path(run_dir) / COMPLETE_MARKER
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass
class FitResult:
    history: list[dict[str, Any]]
    best_epoch: int
    best_val_bacc: float
    last_path: Path
    best_path: Path


def fit(*, data: PreparedData, preset: Preset, method: MethodSpec, seed: int, run_dir: str | Path,
        end_epoch: int, start: dict[str, Any] | None = None, resume: bool = False,
        swaps: Any = None, options: FitOptions | None = None,
        params: dict[str, Any] | None = None, device: torch.device | None = None,
        progress: bool = True) -> FitResult:
    """Train f (or g) with ``method`` from ``start`` (a loaded checkpoint) or from scratch, up to
    ``end_epoch`` (exclusive).

    ``start`` is either a warm checkpoint (a deferred method continues it; ``resume=False``) or this
    run's own ``last.pt`` (``resume=True``: an interrupted run goes on from its last completed
    epoch with its optimizer state and best-so-far, and ends as an uninterrupted run would).
    Writes ``last.pt`` after every epoch and ``best.pt`` whenever the validation bACC reaches or
    beats the best so far among the epochs this method trains (the authors' rule: the last epoch
    with the best validation accuracy; a deferred method never selects the shared warm phase), and
    ``complete.json`` once ``end_epoch`` is reached. Epochs where the method uses pools take the
    plan and the swapped rows from ``swaps`` (pools/reuse.py, generate.py, online.py).
    """
    options = options or FitOptions()
    device = device or default_device()
    if method.uses_pools and swaps is None:
        raise M2mError(f"method {method.name} trains on pool rows: it needs a swap source (pools)")
    check_method(method, preset, class_counts=data.class_counts, input_shape=data.input_shape,
                 options=options, input_kind=data.input_kind)  # every bad-input error before any training or output
    run_dir = Path(run_dir)

    # LA-posthoc: every prediction (validation selection, test, prediction files) from z - tau log pi;
    # the checkpoints record the offset (checkpoint.logit_offset_of), so they stay self-describing.
    offset = posthoc_offsets(data.class_counts, options.la_tau) if method.posthoc else None
    config = model_config(data, preset.model, preset.model_args, method.norm_last,
                          logit_offset=offset.tolist() if offset is not None else None)
    if start is not None:
        if start["config"]["norm_last"] != method.norm_last:
            raise M2mError(f"method {method.name} needs a {'LDAM' if method.norm_last else 'CE'} warm "
                           f"checkpoint; the one given was trained for the other loss")
        model = model_from_checkpoint(start, device)
        first_epoch = int(start["epoch"])
        history = list(start["extra"].get("history", []))
        if resume:
            best_val = float(start["extra"].get("best_val_bacc", -1.0))
            best_epoch = int(start["extra"].get("best_epoch", -1))
        else:
            best_val, best_epoch = -1.0, -1
    else:
        torch.manual_seed(int(rng_for(seed, "init").integers(2**31 - 1)))
        model = build_model(config).to(device)
        first_epoch, history, best_val, best_epoch = 0, [], -1.0, -1
    if not first_epoch <= end_epoch <= preset.epochs or (start is None and end_epoch == 0):
        raise M2mError(f"cannot train {method.name} from epoch {first_epoch} to {end_epoch} "
                       f"(the preset has {preset.epochs} epochs)")
    run_dir.mkdir(parents=True, exist_ok=True)   # after every check: a refused run writes nothing
    (run_dir / COMPLETE_MARKER).unlink(missing_ok=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=preset.lr, momentum=preset.momentum,
                                weight_decay=preset.weight_decay)
    if start is not None and start.get("optimizer_state"):
        optimizer.load_state_dict(start["optimizer_state"])

    best_path, last_path = run_dir / BEST_CHECKPOINT, run_dir / LAST_CHECKPOINT
    train = data.train
    if method.smote:
        train = smote_split(train, data.class_counts, seed, options.smote_k_neighbors)
    train_counts = np.bincount(train.y, minlength=data.num_classes)
    # On an accelerator, uint8 training images live on the device and batches are cropped and
    # flipped there (the same crops and flips as the CPU path); None keeps the CPU path.
    images = DeviceImages.for_training(data, train, torch.device(device))
    ckpt_params = {"method": method.name, "seed": seed, "preset": preset.to_dict(), **(params or {})}

    bar = progress_bar(iterable=range(first_epoch, end_epoch), total=end_epoch - first_epoch,
                       desc=f"{method.name} epochs", enabled=progress, leave=True, unit="epoch")
    for epoch in bar:
        lr = lr_at(epoch, preset)
        for group in optimizer.param_groups:
            group["lr"] = lr
        record: dict[str, Any] = {"epoch": epoch, "lr": lr, **{k: 0 for k in POOL_COUNTERS}}
        source = swaps if method.translates_at(epoch, preset.deferred_epoch) else None
        if source is not None:
            plan, info = source.begin_epoch(epoch, model)
            record.update(info)
        else:
            plan = make_plan(train.y, train_counts, seed=seed, epoch=epoch,
                             order=method.order_at(epoch, preset.deferred_epoch), attempts=False,
                             augment=data.augment, batch_size=preset.batch_size)
        weight = class_weights(method.weighting_at(epoch, preset.deferred_epoch), data.class_counts,
                               beta=options.cb_beta)
        criterion = make_criterion(method.loss, data.class_counts, weight, focal_gamma=options.focal_gamma,
                                   ldam_max_margin=options.ldam_max_margin, ldam_s=options.ldam_s,
                                   la_tau=options.la_tau, reduction=options.weight_reduction).to(device)
        # CMO: the minority-weighted batches pasted onto this epoch's (training/cmo.py)
        cmo_plan = (minority_plan(train.y, train_counts, seed=seed, epoch=epoch, augment=data.augment,
                                  batch_size=preset.batch_size)
                    if method.cmo and cmo_active(epoch, preset.epochs, options.cmo_start_epoch,
                                                 options.cmo_end_epochs) else None)
        model.train()
        total_loss, n_seen = 0.0, 0
        for b in range(plan.n_batches):
            slots = plan.batch_slots(b)
            if len(slots) < 2:  # batch norm cannot train on a single row
                continue
            batch_swaps = source.batch_swaps(slots, model) if source is not None else {}
            if images is not None:
                x, y = device_batch_inputs(images, plan, slots, batch_swaps)
            else:
                x, y = batch_inputs(data, train, plan, slots, batch_swaps)
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            mix = (draw_cutmix(seed, epoch, b, x.shape[2], x.shape[3], prob=options.cmo_prob, beta=options.cmo_beta)
                   if cmo_plan is not None else None)
            if mix is not None:
                if images is not None:
                    x2, y2 = device_batch_inputs(images, cmo_plan, slots, {})
                else:
                    x2, y2 = batch_inputs(data, train, cmo_plan, slots, {})
                    x2, y2 = x2.to(device, non_blocking=True), y2.to(device, non_blocking=True)
                x = paste(x, x2, mix.box)
                loss = mixed_loss(criterion, model(x), y, y2, mix.weight)
            else:
                loss = criterion(model(x), y)
            if not torch.isfinite(loss):
                raise M2mError(f"{method.name}: the training loss became non-finite at epoch {epoch}; "
                               f"lower the learning rate in the preset")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(slots)
            n_seen += len(slots)
        if source is not None:
            record.update(source.end_epoch(model))
        val = balanced_metrics(data.val.y, predict(model, data, data.val, batch_size=preset.eval_batch_size,
                                                   logit_offset=offset), data.class_counts)
        record.update(train_loss=total_loss / max(n_seen, 1), val_bacc=val["bacc"], val_gm=val["gm"])
        history.append(record)
        # ">=": the last epoch with the best validation bACC wins a tie (the release's rule).
        improved = val["bacc"] >= best_val
        if improved:
            best_val, best_epoch = val["bacc"], epoch
        extra = {"history": history, "best_val_bacc": best_val, "best_epoch": best_epoch}
        ckpt = dict(model=model, optimizer=optimizer, config=config, params=ckpt_params, epoch=epoch + 1,
                    dataset_fingerprint=data.fingerprint, extra=extra)
        save_checkpoint(last_path, **ckpt)
        if improved:
            save_checkpoint(best_path, **ckpt)
        bar.set_postfix(lr=f"{lr:.3g}", loss=f"{record['train_loss']:.3f}", val_bacc=f"{val['bacc']:.1f}")
    if first_epoch == end_epoch and start is not None and not resume:
        # Nothing to train (e.g. the warm phase already covers every epoch): keep the start as last.
        save_checkpoint(last_path, model=model, optimizer=optimizer, config=config, params=ckpt_params,
                        epoch=end_epoch, dataset_fingerprint=data.fingerprint, extra=start["extra"])
    if not best_path.exists():
        shutil.copyfile(last_path, best_path)
    # Written last: evaluate refuses a run folder without it (an interrupted run).
    atomic_write_bytes(run_dir / COMPLETE_MARKER, json.dumps({
        "method": method.name, "seed": int(seed), "end_epoch": int(end_epoch), "best_epoch": int(best_epoch),
        "weights_hash": state_hash(model.state_dict())}, indent=1).encode())
    return FitResult(history, best_epoch, best_val, last_path, best_path)


def write_history(path: str | Path, history: list[dict[str, Any]]) -> None:
    """Per-epoch records as a JSON list (a DVC plot: x=epoch, y=val_bacc)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{k: v for k, v in r.items() if not isinstance(v, dict)} for r in history]
    path.write_text(json.dumps(rows, indent=1))
