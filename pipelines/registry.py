"""Study registry: name → config model and the study flow (imported only when run)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from .aspire_models import AspireLocationConfig, AspireSeismicConfig, AspireStylizedConfig
from .co2_models import Co2ForecastConfig
from .config import StudyConfig
from .mad_models import MadConfig
from .models import MadGaussianConfig, SeismicImagingConfig, SeismicSurveyConfig

__all__ = ["StudyEntry", "STUDIES", "models", "load_flow"]


@dataclass(frozen=True)
class StudyEntry:
    name: str
    model: type[StudyConfig]
    flow: str  # "module:attribute", imported lazily (Prefect is heavy)
    summary: str


STUDIES: dict[str, StudyEntry] = {
    e.name: e
    for e in [
        StudyEntry("aspire_location", AspireLocationConfig, "flows.aspire_location:aspire_location",
                   "ASPIRE locating a source from travel times: exact posterior by quadrature, ideal per iteration"),
        StudyEntry("aspire_seismic", AspireSeismicConfig, "flows.aspire_seismic:aspire_seismic",
                   "ASPIRE on seismic imaging: 64x64 GRF velocity prior, FWI-gradient summaries, conditional Glow"),
        StudyEntry("aspire_stylized", AspireStylizedConfig, "flows.aspire_stylized:aspire_stylized",
                   "ASPIRE on a linear-Gaussian problem with a known posterior: a CNF per iteration, metrics"),
        StudyEntry("co2_forecast", Co2ForecastConfig, "flows.co2_forecast:co2_forecast",
                   "CO2 plume: channelized permeability, two-phase flow, FNO surrogate, rock physics, time-lapse RTM"),
        StudyEntry("mad", MadConfig, "flows.mad:mad_study",
                   "self-consuming loops of any model family: precision/recall and Fréchet distance per generation"),
        StudyEntry("mad_gaussian", MadGaussianConfig, "flows.mad_gaussian:mad_gaussian",
                   "self-consuming Gaussian loop: fitted mean/covariance and W2 per generation, 3 loop types"),
        StudyEntry("seismic_survey", SeismicSurveyConfig, "flows.seismic_survey:seismic_survey",
                   "2D acoustic survey: layered (+ random, + circle) velocity model, geometry, Devito shot records"),
        StudyEntry("seismic_imaging", SeismicImagingConfig, "flows.seismic_imaging:seismic_imaging",
                   "survey -> smoothed background -> RTM per shot -> stacked image; ASPIRE gradient summaries"),
    ]
}


def models() -> dict[str, type[StudyConfig]]:
    return {k: e.model for k, e in STUDIES.items()}


def load_flow(name: str) -> Any:
    module, attr = STUDIES[name].flow.split(":")
    return getattr(importlib.import_module(module), attr)
