"""Dataset kinds: what every dataset of a kind holds, declared once and checked when a step's result is written.

A :class:`Kind` names the data variables every dataset of the kind has, with their dims, and the coordinates
and attributes readers and plotters rely on. Dims are matched name by name, with four patterns: ``"y?"`` (that
dim or none: a 3-D grid has ``y`` between ``x`` and ``z``), ``"case|sample"`` (one of them), ``"*"`` (any one
dim) and ``"..."`` (any number of dims, none included). ``optional`` variables need not be there, but have those
dims when they are. More is always allowed: a kind names the least its readers need. A piece of a mapped step
holds the same variables with the mapped dim cut to the piece, so it is checked against the same kind.

:func:`check` returns the first problem, :func:`require` raises it as one line naming the step, the kind and the
variable (``flows.pieces`` calls it on every result before writing it, so nothing of a bad result is written,
nor marked complete). A kind not declared here is not checked (tests write made-up kinds); a test checks that
every kind a registered study's steps write is declared. A study module may declare a kind of its own with
:func:`register`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strata_errors import RunError

__all__ = ["Kind", "KINDS", "register", "lookup", "check", "require", "KindError"]

Dims = tuple[str, ...]


@dataclass(frozen=True)
class Kind:
    """One kind of dataset: ``variables`` (name → dims) every dataset of it has, ``optional`` ones (checked when
    present), ``coords`` (name → dims) and ``attrs`` (names) readers rely on; ``doc``: one line."""

    name: str
    doc: str
    variables: Mapping[str, Dims] = field(default_factory=dict)
    optional: Mapping[str, Dims] = field(default_factory=dict)
    coords: Mapping[str, Dims] = field(default_factory=dict)
    attrs: tuple[str, ...] = ()


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Declare ``kind`` (a name declared twice is an error: one schema per kind)."""
    if kind.name in KINDS and KINDS[kind.name] != kind:
        raise ValueError(f"kind {kind.name!r} is declared twice")
    KINDS[kind.name] = kind
    return kind


def lookup(name: str) -> Kind | None:
    """The declared kind ``name``, or None."""
    return KINDS.get(name)


def _matches(dims: Dims, pattern: Dims) -> bool:
    if not pattern:
        return not dims
    head, rest = pattern[0], pattern[1:]
    if head == "...":
        return any(_matches(dims[i:], rest) for i in range(len(dims) + 1))
    if head.endswith("?") and _matches(dims, rest):
        return True
    if not dims:
        return False
    ok = head == "*" or dims[0] in head.rstrip("?").split("|")
    return ok and _matches(dims[1:], rest)


def _dims(dims: Dims) -> str:
    return "(" + ", ".join(dims) + ")"


def check(ds: Any, kind: str | Kind) -> str | None:
    """The first way ``ds`` falls short of ``kind`` (e.g. ``no variable 'w2'``), or None (also for a kind not
    declared). Checkpoints are checked by their attrs: their variables are named by the network's tensors."""
    spec = lookup(kind) if isinstance(kind, str) else kind
    if spec is None:
        return None
    for what, where, names, required in (("variable", ds.data_vars, spec.variables, True),
                                         ("variable", ds.data_vars, spec.optional, False),
                                         ("coordinate", ds.coords, spec.coords, True)):
        for name, pattern in names.items():
            if name not in where:
                if required:
                    return f"no {what} {name!r}"
                continue
            dims = tuple(map(str, ds[name].dims))
            if not _matches(dims, pattern):
                return f"{what} {name!r} has dims {_dims(dims)}, not {_dims(pattern)}"
    missing = [a for a in spec.attrs if a not in ds.attrs]
    return f"no attribute {missing[0]!r}" if missing else None


class KindError(RunError):
    """A step's result is not a dataset of its kind: the step's code is at fault, so a rerun fails the same way
    (the runtime raises it as it is, not as a piece to resume)."""


def require(ds: Any, kind: str, step: str) -> None:
    """:func:`check`, raised as a :class:`KindError` in one line naming the step (``"<step> piece <i>"`` for a piece
    of a mapped step), the kind and what is missing."""
    problem = check(ds, kind)
    if problem:
        raise KindError(f"step {step}: its result is not a {kind!r} dataset: {problem} "
                        f"(the kind's declaration: flows/kinds.py)")


def _declare(name: str, doc: str, variables: Mapping[str, Dims] | None = None, **kw: Any) -> None:
    register(Kind(name, doc, dict(variables or {}), **kw))


GRID = ("x", "y?", "z")  # a 2-D (x, z) or 3-D (x, y, z) grid
GRID_COORDS = {"x": ("x",), "z": ("z",)}

# -- seismic: survey, imaging, LSRTM, SEG-Y ------------------------------------------------------------------
_declare("velocity_model", "a velocity model on the grid (vp in m/s; a monitor model adds rho and saturation)",
         {"vp": GRID}, coords=GRID_COORDS)
_declare("geometry", "sources, receivers, time axis and source wavelet of a survey",
         {"wavelet": ("time",)}, coords={"shot": ("shot",), "receiver": ("receiver",), "time": ("time",)},
         attrs=("dt",))
_declare("shot_records", "recorded pressure per shot (a survey, or the monitor − baseline difference)",
         {"data": ("shot", "receiver", "time")}, coords={"shot": ("shot",), "time": ("time",)}, attrs=("dt",))
_declare("shot_images", "the migrated image and illumination of each shot",
         {"image": ("shot", *GRID), "illumination": ("shot", *GRID)}, coords={"shot": ("shot",), **GRID_COORDS})
_declare("image", "the stacked image and its illumination", {"image": GRID, "illumination": GRID},
         coords=GRID_COORDS)
_declare("image_quality", "the images of every imaging condition side by side with their quality measures",
         {"image": ("condition", *GRID), "low_wavenumber_share": ("condition",),
          "peak_depth": ("condition", "trace", "peak"), "peak_height": ("condition", "trace", "peak")},
         coords={"condition": ("condition",), **GRID_COORDS})
_declare("lsrtm_shots", "per shot, LSRTM's start (Jᵀr₀, illumination, ‖r₀‖²) or one Born normal-operator apply",
         optional={"gradient": ("shot", *GRID), "illumination": ("shot", *GRID), "residual_norm2": ("shot",),
                   "normal": ("shot", *GRID), "q_norm2": ("shot",)}, coords={"shot": ("shot",)})
_declare("lsrtm_state", "the CGLS state of LSRTM after an iteration",
         {"image": GRID, "cg_y": GRID, "cg_s": GRID, "cg_p": GRID, "preconditioner": GRID,
          "residual_norm": ("iteration",), "residual_norm2": (), "gamma": ()}, attrs=("iteration",))
_declare("lsrtm", "the LSRTM image and residual per iteration",
         {"image": ("iteration", *GRID), "residual_norm": ("iteration",), "relative_residual": ("iteration",)},
         coords={"iteration": ("iteration",), **GRID_COORDS})
_declare("model_samples", "velocity models per sample (prior draws, smoothed or initial estimates)",
         {"vp": ("sample", *GRID)}, coords={"sample": ("sample",)})
_declare("pair_records", "shot records per sample model", {"data": ("sample", "shot", "receiver", "time")},
         coords={"sample": ("sample",), "time": ("time",)})
_declare("summary", "per sample, ASPIRE's summary of the data (a gradient or an RTM image)",
         optional={"gradient": ("sample", "..."), "image": ("sample", *GRID), "objective": ("sample",)},
         coords={"sample": ("sample",)})
_declare("segy", "the traces of an imported SEG-Y file (`strata segy import`), header words as coordinates",
         {"data": ("trace", "time")}, coords={"trace": ("trace",), "time": ("time",)})

# -- learned posteriors: the ASPIRE loop and its problems ------------------------------------------------------
_declare("linear_problem", "the linear-Gaussian problem y = A x + n (aspire_stylized)",
         {"A": ("datum", "component"), "mu0": ("component",), "G0": ("component", "component_"),
          "Gn": ("datum", "datum_")})
_declare("location_problem", "receivers on a circle locating a source from travel times (aspire_location)",
         {"receivers": ("receiver", "axis")}, attrs=("velocity", "noise_std"))
_declare("pairs", "training and held-out pairs (truth x, observation y) per sample",
         {"x": ("sample", "..."), "y": ("sample", "...")}, coords={"sample": ("sample",)})
_declare("estimates", "per sample, the estimate an iteration summarizes around (the posterior's variable; std)",
         optional={"std": ("sample", "...")}, coords={"sample": ("sample",)})
_declare("reference_posterior", "the exact posterior of the held-out cases (analytic, or by quadrature)",
         {"mean": ("case|sample", "..."), "cov": ("...",)})
_declare("posterior", "a CNF's posterior of every held-out case: draws, mean, std, truth, nll",
         {"draws": ("case", "draw", "..."), "mean": ("case", "..."), "std": ("case", "..."),
          "truth": ("case", "..."), "nll": ("case",)}, coords={"case": ("case",)}, attrs=("iteration",))
_declare("case_metrics", "per held-out case, metrics an iteration's table takes in (baselines, grid KL, ideal)",
         coords={"case": ("case",)}, attrs=("role",))
_declare("aspire_metrics", "metrics per iteration ± standard error, per case, and the change between iterations",
         {name: ("iteration",) for name in ("rmse", "mean_std", "coverage_50", "coverage_90", "nll",
                                            "coverage_50_nominal", "coverage_90_nominal")},
         coords={"iteration": ("iteration",)})
_declare("checkpoint", "a trained network: its state_dict tensors (named by key), class, init and history",
         attrs=("model_class", "model_init", "checkpoint_format"))

# -- generative models eating their own data (MAD) ----------------------------------------------------------
_declare("mad_real", "the mad study's real data: the pool, the held-out set and the fixed PCA feature space",
         {"pool": ("point", "feature"), "held_out": ("held", "feature"), "feature_mean": ("feature",),
          "feature_axes": ("component", "feature"), "feature_scale": ("component",)})
_declare("mad_generation", "one generation of the mad study: every chain's samples and their scores",
         {"samples": ("chain", "sample", "feature"), "precision": ("chain",), "recall": ("chain",),
          "fid": ("chain",)}, coords={"chain": ("chain",)})
_declare("mad_curves", "the mad study's precision, recall and Fréchet distance per loop, bias, chain, generation",
         {m: ("loop", "bias", "chain", "generation") for m in ("precision", "recall", "fid")},
         coords={"loop": ("loop",), "bias": ("bias",), "generation": ("generation",)})
_declare("mad_gaussian_real", "mad_gaussian's real samples of every chain", {"x": ("chain", "sample", "dim")},
         coords={"chain": ("chain",)})
_declare("mad_gaussian_generation", "one generation of mad_gaussian: every chain's fitted mean, covariance, W2",
         {"mean": ("chain", "dim"), "cov": ("chain", "dim", "dim_"), "w2": ("chain",)},
         coords={"chain": ("chain",), "generation": ()})
_declare("mad_gaussian_curves", "mad_gaussian's W2, variance and mean error per loop and generation (± SE)",
         {n: ("loop", "generation") for n in ("w2_mean", "w2_se", "var_mean", "var_se", "var_median", "mean_err",
                                              "mean_err_se")},
         optional={"var_theory": ("loop", "generation"), "mean_err_theory": ("loop", "generation")},
         coords={"loop": ("loop",), "generation": ("generation",)})

# -- CO2 storage: flow simulation, FNO forecast, coupled inversion ---------------------------------------------
_declare("rock_samples", "permeability and porosity per sample",
         {"permeability": ("sample", "x", "z"), "porosity": ("sample", "x", "z")},
         coords={"sample": ("sample",), **GRID_COORDS})
_declare("co2_simulation", "two-phase flow per sample: saturation and pressure per report time, volumes",
         {"saturation": ("sample", "time", "x", "z"), "pressure": ("sample", "time", "x", "z"),
          "injected_co2": ("sample", "time"), "permeability": ("sample", "x", "z")},
         coords={"sample": ("sample",), "time": ("time",), **GRID_COORDS})
_declare("co2_forecast", "the surrogate's saturation forecast per held-out sample beside the simulated one",
         {"saturation": ("sample", "time", "x", "z"), "simulated": ("sample", "time", "x", "z"),
          "relative_l2": ("sample", "time")}, coords={"sample": ("sample",), "time": ("time",), **GRID_COORDS})
_declare("forecast_metrics", "the forecast's relative L2 error per report time ± standard error",
         {"relative_l2": ("time",), "relative_l2_se": ("time",)}, coords={"time": ("time",)})
_declare("coupled_inversion", "permeability inverted from monitor records, per iteration, beside the truth",
         {"permeability": ("iteration", "x", "z"), "misfit": ("iteration",), "true_permeability": ("x", "z")},
         coords={"iteration": ("iteration",), **GRID_COORDS})

# -- claims ----------------------------------------------------------------------------------------------------
_declare("claims", "a paper's claims measured on the run: value ± se against threshold, holds, the paper's number",
         {n: ("claim",) for n in ("value", "se", "threshold", "margin", "measured", "holds", "paper", "statement",
                                  "source", "comparison", "note")}, coords={"claim": ("claim",)})
