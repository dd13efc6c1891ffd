"""The only Prefect code: step wrappers, study flows and the runtime (server, cluster, threads)."""
