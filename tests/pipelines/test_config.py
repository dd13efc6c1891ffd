"""Bad configuration → exit 2, one `error:` line naming file and field, before any work starts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipelines.cli import main

CASES = [
    (["run", "no_such_study"], "unknown study 'no_such_study'"),
    (["run", "mad_gaussian", "--preset", "huge"], "unknown preset 'huge'"),
    (["run", "mad_gaussian", "--set", "colour=blue"], "field 'colour': unknown field"),
    (["run", "mad_gaussian", "--set", "n=many"], "--set n=many: field 'n'"),
    (["run", "mad_gaussian", "--set", "lam=-1"], "--set lam=-1: field 'lam': Input should be greater than 0"),
    (["run", "mad_gaussian", "--set", "generations=0"], "field 'generations'"),
    (["run", "mad_gaussian", "--set", "estimator=median"], "field 'estimator'"),
    (["run", "mad_gaussian", "--set", "loops=[fully_synthetic, bogus]"], "field 'loops.1'"),
    (["run", "mad_gaussian", "--set", "lam"], "--set 'lam': expected key=value"),
    (["run", "mad_gaussian", "--set", "=3"], "is not a field path"),
    (["run", "mad_gaussian", "--set", "n=[1"], "value is not valid YAML"),
    (["run", "mad_gaussian", "--workers", "0"], "--workers must be"),
    (["run", "mad_gaussian", "--set", "pieces.per_task=0"],
     "field 'pieces.per_task': must be 'auto' or an integer >= 1 (got 0)"),
    (["run", "seismic_survey", "--set", "simulation.pieces.per_task=fast"],
     "field 'simulation.pieces.per_task': must be 'auto' or an integer >= 1 (got 'fast')"),
    (["run", "seismic_survey", "--set", "simulation.pieces.per_piece=0"],
     "field 'simulation.pieces.per_piece': Input should be greater than or equal to 1"),
    (["run", "co2_forecast", "--set", "rock.channel.background=-5"],
     "field 'rock.channel.background': Input should be greater than 0"),
    (["run", "co2_forecast", "--set", "rock.porosity.value=1.5"],
     "field 'rock.porosity.value': Input should be less than 1"),
    (["run", "co2_forecast", "--set", "flow.wells=[{name: i, x: 2000, z: 480, rate: 1e-3}, {name: p, x: 10, z: 480, "
     "rate: -1e-3}]"], "well 'i' at x=2000 m, z=480 m lies outside the grid (0-960 m x 0-960 m)"),
    (["run", "co2_forecast", "--set", "flow.wells=[{name: i, x: 100, z: 480, rate: 1e-3}, {name: p, x: 800, z: 480, "
     "rate: -2e-3}]"], "well rates do not balance: injection 0.001 m³/s vs production 0.002 m³/s"),
    (["run", "co2_forecast", "--set", "inversion.initial=1000"],
     "--set inversion.initial=1000: field 'inversion': initial 1000 mD must lie inside bounds [5.0, 500.0]"),
    (["run", "aspire_seismic", "--set", "prior.layers.contrast=[100, 1200]"],
     "velocities up to 4975 m/s (prior.vp_max, or the fastest the prior can make) need a time step <= 0.00167 s"),
    (["run", "aspire_seismic", "--set", "prior.layers.contrast=[600, 100]"],
     "field 'prior.layers': prior.layers.contrast = [600, 100]: the low end must not exceed the high end"),
    (["run", "aspire_seismic", "--set", "prior.layers.top_velocity=[300, 400]"],
     "the prior can make velocities down to -125 m/s"),
    (["run", "seismic_survey", "--set", "geometry.layout=ring"], "geometry: ring layout needs ring_inset"),
    (["run", "aspire_location", "--preset", "tiny", "--set", "aspire.train_pairs=9"],
     "field 'aspire.train_pairs': Input should be greater than or equal to 10 (got 9)"),
    (["catalog", "show", "NOTAKEY"], "malformed key 'NOTAKEY'"),
    (["catalog", "show", "abcdef12"], "no dataset with key 'abcdef12'"),
    (["bogus-command"], "invalid choice"),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_line_exit_2(argv, message, tmp_path, capsys):
    root = tmp_path / "root"
    rc = main([*argv, "--root", str(root)] if argv[0] != "bogus-command" else argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert message in err[0], err[0]
    assert not (root / "datasets").exists()


def _write(tmp_path, text: str):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_yaml_syntax_error_names_file_and_line(tmp_path, capsys):
    path = _write(tmp_path, "study: mad_gaussian\nconfig:\n  n: [1, 2\n")
    assert main(["run", str(path), "--root", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: line") and "YAML syntax error" in err


def test_bad_field_in_a_study_file_names_the_file(tmp_path, capsys):
    path = _write(tmp_path, "study: mad_gaussian\nconfig:\n  sigma0: 0\npresets:\n  small: {}\n")
    assert main(["run", str(path), "--root", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {path}: field 'sigma0': Input should be greater than 0 (got 0)"


def test_cross_field_rule(tmp_path, capsys):
    assert main(["run", "mad_gaussian", "--set", "dim=3", "--set", "rho=-0.9", "--root", str(tmp_path)]) == 2
    assert "rho must lie in" in capsys.readouterr().err


def test_good_config_loads_frozen_with_preset_and_overrides():
    from pipelines.config import load_study
    from pipelines.registry import models

    s = load_study("mad_gaussian", "paper", ["generations=7", "loops=[fresh_data]"], models())
    assert s.preset == "paper" and s.config.generations == 7 and s.config.n == 100
    assert s.config.loops == ("fresh_data",)
    with pytest.raises(ValidationError):
        s.config.n = 3  # frozen


def test_study_files_hold_presets_only_and_the_config_models_hold_every_default():
    """One source of every default: a bundled study file has no base values (no ``config:``) and no name (its file
    names it); each config model builds from its defaults alone (its validators pass), and a preset that sets part
    of a section keeps the study's defaults for the section's other fields."""
    import yaml

    from pipelines.config import load_study
    from pipelines.registry import STUDIES, models
    from studies import study_file

    for name in STUDIES:
        doc = yaml.safe_load((study_file(name)).read_text())
        assert not {"config", "study"} & set(doc), f"{name}.yaml: base values belong in the config model"
        models()[name]()
    tiny = load_study("aspire_seismic", "tiny", [], models()).config
    assert tiny.geometry.layout == "ring" and tiny.geometry.ring_inset == 20.0  # the preset sets ring_inset only
