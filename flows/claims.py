"""The claims step every study with a paper ends with: its declared claims (:class:`tasks.claims.Claim`)
measured on the run's own outputs into a ``claims`` dataset that joins the lineage like any output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tasks import claims as _claims

from .step import Ref, Step

__all__ = ["check_claims", "claims_step"]

claims_step = Step("claims", _claims.evaluate, version="1", kind="claims")


def check_claims(claims: Sequence[_claims.Claim], outputs: Mapping[str, Ref]) -> Ref:
    """The ``claims`` dataset of those ``claims`` whose outputs the run returned (a configuration may leave some
    out), over the study outputs they need (a flow body's last step)."""
    claims = [c for c in claims if all(n in outputs for n in c.needs)]
    names = list(dict.fromkeys(n for c in claims for n in c.needs))
    return claims_step(*(outputs[n] for n in names), label=f"{len(claims)} claims", names=names,
                       claims=[c.spec() for c in claims])
