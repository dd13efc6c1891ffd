"""A package of studies for the tests (``STRATA_STUDY_PACKAGES=tests.example_study``): the smallest complete
study, ``example_walk``, laid out as a study of ``studies/`` is — its science (``science.py``), its module (config
model, steps, claims, flow body: ``example_walk.py``) and its presets (``example_walk.yaml``). The study contract
suite runs it like the registered studies; nothing outside this folder and its tests names it."""
