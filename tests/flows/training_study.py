"""A test-only study: one step trains a tiny MLP deterministically and returns its checkpoint."""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from flows.step import Ref, Step
from flows.study import study_flow
from tasks.nn.checkpoint import Trained
from tasks.nn.models import MLP
from tasks.nn.training import fit, seeded_torch

__all__ = ["TrainingConfig", "train_mlp", "train", "training_study"]


class TrainingConfig(BaseModel):
    """The study's frozen config."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sizes: tuple[int, ...] = (1, 16, 16, 1)
    samples: int = Field(256, ge=8)
    epochs: int = Field(8, ge=1)
    seed: int = Field(0, ge=0)
    threads: int = Field(1, ge=1)  # torch threads of the step: results may depend on them


def train_mlp(*, sizes: list[int], samples: int, epochs: int, seed: int, threads: int) -> Trained:
    """An MLP fitted to y = sin(2x) on x ~ U(-2, 2) (MSE, 20 % held out, early stopping); warns
    which process trained it (the test checks where the step ran)."""
    warnings.warn(f"trained in process {os.getpid()}", UserWarning, stacklevel=1)
    with seeded_torch(seed, 0, threads=threads) as gen:
        x = torch.rand(samples, 1, generator=gen) * 4 - 2
        model = MLP(sizes, activation=torch.tanh)
        history = fit(model, x, torch.sin(2 * x), generator=gen, epochs=epochs, batch_size=32, lr=1e-2)
    return Trained(model, {"sizes": list(sizes), "activation": torch.tanh}, history)


train = Step("train_mlp", train_mlp, version="1", kind="checkpoint")


@study_flow("training_test")
def training_study(cfg: Any) -> dict[str, Ref]:
    return {"model": train(sizes=list(cfg.sizes), samples=cfg.samples, epochs=cfg.epochs, seed=cfg.seed,
                           threads=cfg.threads)}
