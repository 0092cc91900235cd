"""The textbook adversarial-training loop the engine is measured against: a `DataLoader` over a
`TensorDataset` of float images, contiguous memory, the model put in eval mode to attack and in
train mode to step, PGD written out as in Madry et al.'s tutorial code. It does the same work
per batch as `dfl_lib.training.loop.train_epoch` with a PGD attack: the first half of each batch is
replaced by its PGD-k examples (random start, last iterate), and the model's loss (CE or PCL,
on logits and features) is minimised.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def textbook_pgd(model, x, y, *, eps: float, alpha: float, steps: int,
                 generator: torch.Generator) -> torch.Tensor:
    """L-inf PGD from a uniform random start; the last iterate. x (N, C, H, W) in [0, 1]."""
    x_adv = (x + eps * (2 * torch.rand(x.shape, generator=generator) - 1)).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        logits = model(x_adv)
        logits = logits[0] if isinstance(logits, tuple) else logits
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), x_adv)
        x_adv = x_adv.detach() + alpha * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


def plain_loader(x_uint8: torch.Tensor, y: torch.Tensor, *, batch_size: int,
                 seed: int) -> DataLoader:
    """The usual loader: float images in [0, 1], shuffled, the default collate, no workers."""
    data = TensorDataset(x_uint8.float() / 255.0, y)
    return DataLoader(data, batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def plain_adversarial_epoch(model, criterion, loader: DataLoader, optimizer, *, eps: float,
                            alpha: float, steps: int, adv_fraction: float,
                            generator: torch.Generator) -> float:
    """One epoch; returns the mean training loss."""
    total, seen = 0.0, 0
    for xb, yb in loader:
        k = round(adv_fraction * len(yb))
        model.eval()
        x_adv = textbook_pgd(model, xb[:k], yb[:k], eps=eps, alpha=alpha, steps=steps,
                             generator=generator)
        model.train()
        xb = torch.cat([x_adv, xb[k:]])
        logits, features = model(xb, return_features=True)
        loss = criterion(logits, yb, features)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(yb)
        seen += len(yb)
    return total / max(seen, 1)
