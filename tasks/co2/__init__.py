"""CO2 storage: permeability and porosity, two-phase flow, the FNO surrogate, rock physics, monitoring."""
