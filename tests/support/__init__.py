"""Helpers shared by the test modules (no tests here, so pytest collects nothing from them).

- ``util``: throwaway servers, token lists and small waits used across the suite;
- ``cli``: input files, throwaway credentials and running the ``pushwire`` command;
- ``store``: the PostgreSQL test server and a store per backend;
- ``jobs``: the Redis test server, a store with an APNs application, worker processes;
- ``campaigns``: a controllable clock, stores with endpoints in several zones, scheduler ticks;
- ``server``: ``pushwire serve`` in a subprocess, API keys and HTTP clients for it.
"""
