"""The science of the studies as pure functions over arrays and xarray datasets: no Prefect, no catalog."""
