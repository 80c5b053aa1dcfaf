#!/usr/bin/env python3
"""
PyTorch reference of scnym-webgpu's training step, for the side-by-side speed bench
(bench/speed.ts). Our own implementation, written from scnym/step.ts, nn/model.ts,
scnym/config.ts, kernels/mixup.ts and ../shared/paper/reference_defaults.md; it computes what
the original scNym computes, the way the original does it: dense input, densified per batch.

One step (labelled batch X and target batch U, 256 cells each by default):
  1. X augmented by log1p_drop (expm1 -> drop non-zero counts with p -> rescale each cell to its
     own total -> log1p); U is not augmented;
  2. teacher = the model in eval mode on U: softmax, sharpened with T -> pseudolabels;
  3. MixUp over the pool [U ; X]: one random permutation as partners, gamma ~ Beta(a, a),
     gamma = max(gamma, 1 - gamma) per row; inputs and (pseudo)labels mixed alike;
  4. training-mode forward of the mixed U rows (consistency: sum_c (softmax - q)^2, row mean,
     weighted by the sigmoid ramp lambda_ssl) and of the mixed X rows (soft cross-entropy);
  5. training-mode forward of the pool [U ; X] to the embedding, gradient reversal (weight w(e)),
     adversary Linear -> ReLU -> Linear, cross-entropy against the domains;
  6. one backward of L_sup + lambda_ssl L_ssl + L_adv, Adadelta (coupled weight decay).
Every epoch ends with an eval-mode pass over the early-stopping cells (loss, accuracy); the
weights of the best epoch (by that loss, from min_epochs on) are restored at the end, as ours.

Input: a directory written by bench/speed.ts (raw little-endian arrays plus meta.json):
  indptr.u32 (cells + 1), indices.u32, data.f32  -- CSR of the normalised matrix
  class.i32   class code of labelled cells; for target cells the code of their annotation
              (-1: absent or unseen, counts as wrong) -- used only to report target accuracy
  split.i8    0 train, 1 early stopping, 2 validation, 3 target, -1 unused
  domain.i32  domain code of each used cell
  meta.json   sizes and the resolved configuration (see `speed.ts`)
Output: one JSON object on stdout (progress on stderr).

  OPENBLAS_CORETYPE= python3 bench/torch_reference.py DIR [--epochs N] [--threads 2] [--seed 0]
"""
import argparse
import copy
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def ramp(epoch, mx, ramp_epochs, shape):
    """scnym/config.ts rampWeight: max * exp(-5 (1 - e/ramp)^2) (sigmoid) or max * e/ramp."""
    if ramp_epochs <= 0 or epoch >= ramp_epochs:
        return mx
    t = epoch / ramp_epochs
    return mx * t if shape == "linear" else mx * math.exp(-5 * (1 - t) ** 2)


class Csr:
    def __init__(self, d, n_rows, n_cols):
        self.indptr = np.fromfile(os.path.join(d, "indptr.u32"), dtype="<u4").astype(np.int64)
        self.indices = np.fromfile(os.path.join(d, "indices.u32"), dtype="<u4").astype(np.int64)
        self.data = np.fromfile(os.path.join(d, "data.f32"), dtype="<f4")
        self.n_rows, self.n_cols = n_rows, n_cols
        assert len(self.indptr) == n_rows + 1 and len(self.data) == self.indptr[-1]

    def dense(self, rows):
        """Rows `rows` as a dense float32 tensor (the original densifies every minibatch)."""
        starts = self.indptr[rows]
        lens = self.indptr[rows + 1] - starts
        out = np.zeros((len(rows), self.n_cols), dtype=np.float32)
        total = int(lens.sum())
        if total:
            row_of = np.repeat(np.arange(len(rows)), lens)
            first = np.cumsum(lens) - lens
            pos = np.arange(total) - np.repeat(first, lens) + np.repeat(starts, lens)
            out[row_of, self.indices[pos]] = self.data[pos]
        return torch.from_numpy(out)


class Classifier(nn.Module):
    """[Linear -> BatchNorm1d -> Dropout -> ReLU] x layers -> Linear; untied hidden layers."""

    def __init__(self, genes, hidden, layers, classes, dropout):
        super().__init__()
        mods, width = [], genes
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.Dropout(dropout),
                     nn.ReLU()]
            width = hidden
        self.trunk = nn.Sequential(*mods)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        emb = self.trunk(x)  # post-ReLU embedding, what the adversary sees
        return self.head(emb), emb


class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.weight * g, None


class Adversary(nn.Module):
    def __init__(self, width, hidden, domains):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, domains))

    def forward(self, emb, weight):
        return self.net(GradReverse.apply(emb, weight))


def log1p_drop(x, p):
    """expm1 -> drop each count with probability p -> rescale to the cell's total -> log1p."""
    counts = torch.expm1(x)
    kept = counts * (torch.rand_like(counts) >= p)
    total = counts.sum(1, keepdim=True)
    kept_total = kept.sum(1, keepdim=True)
    ok = kept_total > 0  # a cell that lost every count stays as it was (as ours)
    scale = torch.where(ok, total / kept_total.clamp_min(1e-30), torch.ones_like(total))
    return torch.where(ok, torch.log1p(kept * scale), x)


def blas_info():
    info = {"torch_config_blas": None, "threadpool": None}
    cfg = torch.__config__.show()
    for part in cfg.replace("\n", ",").split(","):
        if "BLAS_INFO" in part:
            info["torch_config_blas"] = part.strip()
    try:
        import threadpoolctl
        info["threadpool"] = threadpoolctl.threadpool_info()
    except ImportError:
        pass
    info["env"] = {k: os.environ.get(k) for k in
                   ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                    "OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    try:  # OpenBLAS runs its own thread pool: hold it to the same count
        import threadpoolctl
        blas_limit = threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")  # noqa: F841
    except ImportError:
        pass
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    meta = json.load(open(os.path.join(args.dir, "meta.json")))
    cfg = meta["config"]
    X = Csr(args.dir, meta["cells"], meta["genes"])
    cls = np.fromfile(os.path.join(args.dir, "class.i32"), dtype="<i4")
    split = np.fromfile(os.path.join(args.dir, "split.i8"), dtype=np.int8)
    dom = np.fromfile(os.path.join(args.dir, "domain.i32"), dtype="<i4")
    train_cells = np.flatnonzero(split == 0)
    stop_cells = np.flatnonzero(split == 1)
    target_cells = np.flatnonzero(split == 3)
    C, D = meta["classes"], meta["domains"]
    epochs = args.epochs or cfg["train"]["epochs"]
    m, t, s, d = cfg["model"], cfg["train"], cfg["ssl"], cfg["dan"]
    use_ssl = s["enabled"] and len(target_cells) > 0
    use_dan = d["enabled"] and len(target_cells) > 0 and D >= 2
    bs = min(t["batchSize"], len(train_cells))

    model = Classifier(meta["genes"], m["hidden"], m["layers"], C, m["dropout"])
    adversary = Adversary(m["hidden"], m["adversaryHidden"], D) if use_dan else None
    params = list(model.parameters()) + (list(adversary.parameters()) if adversary else [])
    opt = torch.optim.Adadelta(params, lr=t["lr"], rho=t["rho"], eps=t["eps"],
                               weight_decay=t["weightDecay"])
    beta = torch.distributions.Beta(torch.tensor(s["mixupAlpha"]), torch.tensor(s["mixupAlpha"]))

    # The target stream: shuffled passes concatenated without end (continues across epochs).
    stream = {"order": np.empty(0, dtype=np.int64), "pos": 0}

    def next_targets(n):
        out = []
        while len(out) < n:
            if stream["pos"] >= len(stream["order"]):
                stream["order"] = rng.permutation(target_cells)
                stream["pos"] = 0
            take = min(n - len(out), len(stream["order"]) - stream["pos"])
            out.extend(stream["order"][stream["pos"]:stream["pos"] + take])
            stream["pos"] += take
        return np.asarray(out, dtype=np.int64)

    def step(x_cells, lam, w):
        nX = len(x_cells)
        xb = log1p_drop(X.dense(x_cells), s["augmentDropout"])
        yX = F.one_hot(torch.from_numpy(cls[x_cells]).long(), C).float()
        if use_ssl or use_dan:
            u_cells = next_targets(nX)
            ub = X.dense(u_cells)
        losses = {}
        if use_ssl:
            nU = len(u_cells)
            model.eval()
            with torch.no_grad():
                q = torch.softmax(model(ub)[0], 1).pow(1 / s["temperature"])
                q = q / q.sum(1, keepdim=True)
            model.train()
            pool_x = torch.cat([ub, xb])
            pool_y = torch.cat([q, yX])
            n = nU + nX
            partner = torch.randperm(n)
            g = beta.sample((n,))
            g = torch.maximum(g, 1 - g)[:, None]
            mixed_x = g * pool_x + (1 - g) * pool_x[partner]
            mixed_y = g * pool_y + (1 - g) * pool_y[partner]
            # As the original: the unlabelled forward first, then the labelled one.
            zU, _ = model(mixed_x[:nU])
            losses["ssl"] = lam * ((torch.softmax(zU, 1) - mixed_y[:nU]) ** 2).sum(1).mean()
            zX, _ = model(mixed_x[nU:])
            losses["sup"] = -(mixed_y[nU:] * F.log_softmax(zX, 1)).sum(1).mean()
        else:
            zX, _ = model(xb)
            losses["sup"] = -(yX * F.log_softmax(zX, 1)).sum(1).mean()
        if use_dan:
            pool = torch.cat([ub, xb]) if use_ssl else torch.cat([xb, ub])
            cells = np.concatenate([u_cells, x_cells] if use_ssl else [x_cells, u_cells])
            emb = model.trunk(pool)  # the head is not needed on this pass
            zD = adversary(emb, w)
            losses["adv"] = F.cross_entropy(zD, torch.from_numpy(dom[cells]).long())
        opt.zero_grad(set_to_none=False)
        sum(losses.values()).backward()
        opt.step()
        return {k: float(v.detach()) for k, v in losses.items()}

    def evaluate(cells, chunk=2048):
        model.eval()
        loss, hits = 0.0, 0
        with torch.no_grad():
            for a in range(0, len(cells), chunk):
                c = cells[a:a + chunk]
                z, _ = model(X.dense(c))
                y = torch.from_numpy(cls[c]).long()
                known = y >= 0
                if known.any():
                    loss += float(F.cross_entropy(z[known], y[known], reduction="sum"))
                hits += int((z.argmax(1) == y).sum())
        model.train()
        return loss / max(len(cells), 1), hits / max(len(cells), 1)

    min_epochs = min(t["minEpochs"], epochs - 1)
    best_loss, best_epoch, best_state, waiting = math.inf, -1, None, 0
    history = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        lam = ramp(epoch, s["maxWeight"], s["rampEpochs"], s["rampShape"])
        w = ramp(epoch, d["maxWeight"], d["rampEpochs"], "sigmoid")
        order = rng.permutation(train_cells)
        batches = [order] if len(order) <= bs else \
            [order[a:a + bs] for a in range(0, len(order) - bs + 1, bs)]
        sums = {}
        for b in batches:
            for k, v in step(b, lam, w).items():
                sums[k] = sums.get(k, 0.0) + v
        val_loss, val_acc = evaluate(stop_cells) if len(stop_cells) else (math.nan, math.nan)
        seconds = time.perf_counter() - t0
        rec = {"epoch": epoch, "seconds": seconds, "steps": len(batches),
               **{k: v / len(batches) for k, v in sums.items()},
               "valLoss": val_loss, "valAccuracy": val_acc}
        history.append(rec)
        print(json.dumps(rec), file=sys.stderr, flush=True)
        score = val_loss if len(stop_cells) else rec["sup"]
        if score < best_loss and epoch >= min_epochs:
            best_loss, best_epoch, waiting = score, epoch, 0
            best_state = (copy.deepcopy(model.state_dict()),
                          copy.deepcopy(adversary.state_dict()) if adversary else None)
        else:
            waiting += 1
        if waiting > t["patience"]:
            break
    if best_state is not None:
        model.load_state_dict(best_state[0])
    target_acc = evaluate(target_cells)[1] if len(target_cells) else None

    times = [h["seconds"] for h in history]
    blas = blas_info()
    print(json.dumps({
        "implementation": "bench/torch_reference.py",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "blas": blas,
        "epochs": len(history),
        "stepsPerEpoch": history[0]["steps"],
        "secondsPerEpoch": statistics.median(times[1:] if len(times) > 1 else times),
        "epochSeconds": times,
        "bestEpoch": best_epoch,
        "targetAccuracy": target_acc,
        "cells": {"train": len(train_cells), "earlyStopping": len(stop_cells),
                  "target": len(target_cells)},
        "history": history,
    }))


if __name__ == "__main__":
    main()
