"""Study definitions (YAML + frozen pydantic models), the study registry and the ``strata`` CLI."""
