"""Seismic modelling and imaging with Devito: models, geometry, survey, migration, gradients, SEG-Y."""
