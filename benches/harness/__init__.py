"""The throughput harness behind ``benches/throughput.py`` and ``pushwire bench``.

One concern per module:

* ``common``: constants, token shapes and the expected outcomes of every scenario;
* ``keys``: the keys, the ES256 provider token (for h2load and httpx) and certificates;
* ``servers``: the pushwire mock and nginx, started and stopped by the harness;
* ``measure``: what a child measures (timed window, CPU, peak RSS, outcome checks) and what
  the parent accounts around it (server CPU, other load on the machine);
* ``tools``: one measuring function per tool (pushwire, aioapns, httpx) run in a child
  process, and h2load run as a process of its own;
* ``scenarios``: which tool runs which scenario against which server, in which order;
* ``report``: tables, ratios against the goals, the Markdown report;
* ``sections``: the sections other benchmarks merge into RESULTS.md, kept verbatim;
* ``cli``: the command line (``python benches/throughput.py ...``).
"""
