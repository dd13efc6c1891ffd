"""Config sections of the learning studies: the ASPIRE loop, training, conditional normalizing flows."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from flows.config import StudyConfig

from .sections import Pieces

__all__ = ["AspireSection", "TrainingSection", "VectorCNFSection", "ImageCNFSection"]


class AspireSection(StudyConfig):
    """The loop: K ``iterations``; ``train_pairs`` training samples and ``test_cases`` held-out ones;
    ``estimate_draws`` posterior draws per sample for each next estimate (its posterior mean);
    ``posterior_draws`` per held-out case for the metrics; ``pieces.per_piece`` samples per chunk;
    ``cross_fit``: F folds — a training sample's next estimate comes from a CNF trained without its fold
    (1: from the CNF trained on all pairs, which saw it)."""

    iterations: int = Field(2, ge=1, le=100)  # K
    cross_fit: int = Field(1, ge=1, le=20)  # folds: a training sample's next estimate from a CNF that did not see it
    train_pairs: int = Field(1000, ge=10, le=10_000_000)  # the linear baseline: 5-fold CV, 2 pairs a fold
    test_cases: int = Field(20, ge=2, le=100_000)  # held-out observations (metrics: mean and standard error over them)
    estimate_draws: int = Field(64, ge=2, le=100_000)  # posterior draws per sample for the next estimate (its mean)
    posterior_draws: int = Field(4000, ge=2, le=1_000_000)  # posterior draws per held-out case for the metrics
    seed: int = Field(0, ge=0)
    pieces: Pieces = Pieces(per_piece=1000)  # samples per zarr chunk (summaries, estimates)

    @model_validator(mode="after")
    def _check(self) -> AspireSection:
        if self.test_cases > self.train_pairs:
            raise ValueError(f"test_cases ({self.test_cases}) must not exceed train_pairs ({self.train_pairs})")
        return self


class TrainingSection(StudyConfig):
    """Maximum-likelihood training of each CNF: Adam, a ``held_out`` share for early stopping on its NLL
    (``patience`` epochs; null: run all ``epochs``). ``threads``: torch threads of the training process —
    results may depend on them, so they are part of the checkpoint's key."""

    epochs: int = Field(100, ge=1, le=100_000)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0, le=1, allow_inf_nan=False)
    held_out: float = Field(0.2, gt=0, lt=1)  # share of the training simulations for validation / early stopping
    patience: int | None = Field(20, ge=1)  # epochs without a better held-out NLL before stopping (best weights kept)
    threads: int = Field(2, ge=1, le=512)  # torch threads (part of the checkpoint's key)


class VectorCNFSection(StudyConfig):
    """The vector CNF (zuko): ``family`` nsf (splines) or maf (affine), autoregressive ``transforms``."""

    family: Literal["nsf", "maf"] = "maf"  # nsf: rational-quadratic splines; maf: affine autoregressive
    transforms: int = Field(3, ge=1, le=64)
    hidden_features: tuple[int, ...] = Field((64, 64), min_length=1)
    activation: Literal["relu", "elu", "silu", "tanh"] = "relu"


class ImageCNFSection(StudyConfig):
    """The conditional Glow: ``levels`` of squeeze, ``steps`` flow steps, split; ``hidden`` conv channels."""

    levels: int = Field(3, ge=1, le=8)
    steps: int = Field(4, ge=1, le=64)
    hidden: int = Field(32, ge=4, le=1024)
    context_features: int = Field(8, ge=1, le=1024)  # channels of the encoded condition per level
    pixelwise: bool = True  # z-score x and the condition per pixel (gradients vary strongly across the image)
    scale_bound: float = Field(2.0, gt=0, le=10, allow_inf_nan=False)  # each affine layer scales by <= exp(±this)
