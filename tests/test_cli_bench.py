"""`pushwire bench` and the pure parts of the throughput harness (benches/harness): the h2load
output parser, the expected outcome counts, the nginx configuration, and the sections of
RESULTS.md that other benchmarks own."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pushwire.cli import bench as cli_bench
from support.cli import invoke

BENCHES = Path(__file__).resolve().parents[1] / "benches"


def harness(module: str) -> ModuleType:
    if str(BENCHES) not in sys.path:
        sys.path.insert(0, str(BENCHES))
    return importlib.import_module(f"harness.{module}")


H2LOAD_OUTPUT = """\
starting benchmark...
spawning thread #0: 4 total client(s). 200000 total requests
TLS Protocol: TLSv1.3
Application protocol: h2
progress: 100% done

finished in 850.25ms, 235224.93 req/s, 24.21MB/s
requests: 200000 total, 200000 started, 200000 done, 190000 succeeded, 10000 failed, \
0 errored, 0 timeout
status codes: 190000 2xx, 0 3xx, 10000 4xx, 0 5xx
traffic: 20.58MB (21584000) total, 16.32MB (17112000) headers (space savings 41.53%), \
380.00KB (389120) data
                     min         max         mean         sd        +/- sd
time for request:      512us     45.87ms     28.51ms      7.91ms    69.58%
time for connect:     4.04ms      4.04ms      4.04ms         0us   100.00%
"""


def test_h2load_summary_is_parsed_with_its_units() -> None:
    h2load = harness("tools.h2load_tool")
    parsed = h2load.parse_output(H2LOAD_OUTPUT)
    assert parsed["duration_s"] == pytest.approx(0.85025)
    assert parsed["rps"] == pytest.approx(235224.93)
    assert (parsed["total"], parsed["done"], parsed["succeeded"], parsed["failed"]) == (
        200000,
        200000,
        190000,
        10000,
    )
    assert (parsed["errored"], parsed["timeout"]) == (0, 0)
    assert parsed["status_classes"] == {"2xx": 190000, "3xx": 0, "4xx": 10000, "5xx": 0}
    assert parsed["request_min_ms"] == pytest.approx(0.512)
    assert parsed["request_max_ms"] == pytest.approx(45.87)
    seconds = H2LOAD_OUTPUT.replace("finished in 850.25ms", "finished in 2.50s")
    assert h2load.parse_output(seconds)["duration_s"] == pytest.approx(2.5)
    with pytest.raises(ValueError):
        h2load.parse_output("h2load: connection refused\n")


def test_h2load_summary_alone_gives_outcomes_by_status_class() -> None:
    h2load = harness("tools.h2load_tool")
    outcomes = h2load.summary_outcomes(h2load.parse_output(H2LOAD_OUTPUT))
    assert dict(outcomes) == {"delivered": 190000, "4xx": 10000}
    unanswered = H2LOAD_OUTPUT.replace("190000 2xx", "189000 2xx")
    assert h2load.summary_outcomes(h2load.parse_output(unanswered))["failed"] == 1000


def test_the_relay_counts_every_byte_each_way() -> None:
    import socket
    import threading

    relay_module = harness("relay")
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve_one() -> None:
            # Answers each request with twice its length, then closes when the client does.
            conn, _ = listener.accept()
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data * 2)

        server = threading.Thread(target=serve_one)
        server.start()
        with relay_module.CountingRelay(listener.getsockname()[1]) as relay:
            with socket.create_connection(("127.0.0.1", relay.port)) as client:
                received = []

                def read_all() -> None:
                    while chunk := client.recv(1 << 20):
                        received.append(len(chunk))

                reader = threading.Thread(target=read_all)
                reader.start()
                for size in (1, 1000, 300_000):
                    client.sendall(b"x" * size)
                client.shutdown(socket.SHUT_WR)
                reader.join(10)
            counts = relay.finish()
        server.join(10)
    assert (counts.upstream, counts.downstream, counts.connections) == (301_001, 602_002, 1)
    assert sum(received) == 602_002


def test_issue_21_scenarios_run_only_when_named_and_count_sets_their_size() -> None:
    cli = harness("cli")
    every = cli.make_config(cli.parse_args([]), ["throughput.py"])
    assert "wire-bytes" not in every.scenarios and "stream-10m" not in every.scenarios
    args = cli.parse_args(
        ["--scenario", "stream-10m", "--count", "1000000", "--stream-kwargs", '{"strict": true}']
    )
    config = cli.make_config(args, ["throughput.py"])
    assert config.scenarios == ["stream-10m"] and config.stream_kwargs == {"strict": True}
    scenarios = harness("scenarios")
    assert scenarios.size_for(config, "pushwire", "stream-10m") == 1_000_000
    assert scenarios.size_for(config, "h2load", "stream-10m") == 1_000_000


def test_h2load_log_gives_outcomes_and_latencies() -> None:
    h2load = harness("tools.h2load_tool")
    rows = ["1795453630948042\t200\t5890", "1795453630948046\t410\t1000", "17954\t-1\t20", ""]
    outcomes, latencies = h2load.parse_log(rows)
    assert outcomes == {"delivered": 1, "410": 1, "failed": 1}
    assert latencies == pytest.approx([0.00589, 0.001, 0.00002])


def test_h2load_expected_counts_follow_its_uri_cycle() -> None:
    h2load = harness("tools.h2load_tool")
    # 4 connections x 200 URIs x 5 cycles: 5% rejected, half 410, half 400.
    assert h2load.expected("rejected-5pct", 4000, 4) == {"delivered": 3800, "410": 100, "400": 100}
    assert h2load.expected("bulk", 1000, 4) == {"delivered": 1000}
    # Uneven: the first connections take the remainder, each from the first URI.
    assert h2load.per_client(10, 4) == [3, 3, 2, 2]
    assert h2load.expected("rejected-5pct", 10, 4, uris=2) == {"410": 6, "delivered": 4}


def test_rejected_tokens_are_five_percent_and_status_only_merges_reasons() -> None:
    common = harness("common")
    tokens = [common.rejected_token(i) for i in range(10_000)]
    counts = common.expected_outcomes(tokens)
    assert counts == {
        common.DELIVERED: 9_500,
        common.UNREGISTERED: 250,
        common.BAD_TOKEN: 250,
    }
    assert all(len(t) == 64 and int(t, 16) >= 0 for t in tokens)
    assert common.status_only(counts) == {"delivered": 9_500, "410": 250, "400": 250}
    # No bulk or warm-up token has a special prefix.
    for i in (0, 1, 10**6, common.WARMUP_TOKEN_BASE):
        assert common.expected_outcome(common.device_token(i)) == common.DELIVERED


def test_nginx_config_has_the_apns_shape(tmp_path: Path) -> None:
    servers = harness("servers")
    text = servers.render_nginx_config(
        tmp_path, 18443, tmp_path / "c.pem", tmp_path / "k.pem", "user nobody nogroup;\n"
    )
    assert "listen 127.0.0.1:18443 ssl http2;" in text
    assert "http2_max_concurrent_streams 1000;" in text
    assert "worker_processes 1;" in text
    assert "access_log off;" in text
    assert "location ~ ^/3/device/a410" in text and "return 410" in text
    assert "location ~ ^/3/device/ba40" in text and "return 400" in text
    assert "add_header apns-id $apns_id always;" in text
    assert text.count("{") == text.count("}")


@pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="no nginx"
)
def test_nginx_accepts_the_generated_config(tmp_path: Path) -> None:
    servers = harness("servers")
    keys = harness("keys")
    _, cert, key = keys.write_server_certificate(tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(servers.render_nginx_config(tmp_path, 18443, cert, key, servers.worker_user()))
    binary = servers.find_nginx()
    done = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


def test_marked_sections_survive_a_regenerated_report() -> None:
    sections = harness("sections")
    store = "<!-- begin:store -->\n## Endpoint store\n\n| a |\n<!-- end:store -->"
    soak = "<!-- begin:soak -->\n## Soak\ntext  with  spaces\n<!-- end:soak -->"
    old = f"# old throughput report\n\nold tables\n\n{store}\n\n{soak}\n"
    new = "# pushwire throughput benchmark\n\nnew tables\n"
    merged = sections.preserve(new, old)
    assert merged.startswith(new.rstrip("\n"))
    assert "old tables" not in merged
    assert store in merged and soak in merged
    assert merged.index(store) < merged.index(soak)
    # Regenerating again changes nothing; a section the new report has is not doubled.
    assert sections.preserve(new, merged) == merged
    own = new + "\n<!-- begin:store -->\nnewer\n<!-- end:store -->\n"
    assert sections.preserve(own, old).count("<!-- begin:store -->") == 1
    assert sections.preserve(new, "no sections") == new


FAKE_HARNESS = """\
import json, sys
from pathlib import Path
Path(sys.argv[0]).with_suffix(".json").write_text(json.dumps(sys.argv[1:]))
sys.exit(3)
"""


def test_bench_runs_the_harness_with_the_options(tmp_path: Path) -> None:
    fake = tmp_path / "throughput.py"
    fake.write_text(FAKE_HARNESS)
    result = invoke(
        [
            "bench",
            "--harness",
            str(fake),
            "--quick",
            "--scenario",
            "bulk",
            "--scenario",
            "hang",
            "--repeats",
            "2",
            "--out",
            str(tmp_path / "r.md"),
            "--n",
            "10",
            "--pin",
            "split",
        ]
    )
    assert result.exit_code == 3  # the harness's own exit code
    argv = json.loads(fake.with_suffix(".json").read_text())
    assert argv[:7] == ["--quick", "--scenario", "bulk", "--scenario", "hang", "--repeats", "2"]
    assert argv[7:9] == ["--out", str(tmp_path / "r.md")]
    assert argv[9:] == ["--n", "10", "--pin", "split"]


def test_bench_without_the_repository_says_where_the_harness_lives(tmp_path: Path) -> None:
    result = invoke(["bench", "--harness", str(tmp_path / "missing.py")])
    assert result.exit_code == 2
    assert "lives in the pushwire repository" in result.output


def test_bench_finds_the_harness_of_this_checkout() -> None:
    assert cli_bench.find_harness() == BENCHES / "throughput.py"


def test_goals_report_per_call_cpu_against_bulk_cpu():
    """Issue 21: single-send CPU per notification over bulk's, from the same run's rows."""
    report = harness("report")
    measure = harness("measure")

    def row(scenario: str, n: int, cpu_s: list[float]) -> object:
        runs = [
            measure.Run(
                i,
                "pushwire",
                scenario,
                "mock",
                n,
                {"ok": True, "rate": 1.0, "cpu_s": c},
                None,
                0,
                0,
            )
            for i, c in enumerate(cpu_s)
        ]
        return report.Row(scenario, "mock", "pushwire", n, runs)

    rows = [row("bulk", 100_000, [1.0, 0.9, 1.1]), row("single-send-10k", 50_000, [0.9, 1.0])]
    [goal] = [g for g in report.goals(rows, None) if "CPU per notification" in g.what]
    # bulk: 10 µs each (median 1.0 s / 100k); single: 19 µs (median 0.95 s / 50k).
    assert goal.median == report.times(1.9)
    assert goal.met is True
    rows[1] = row("single-send-10k", 50_000, [1.2])
    [goal] = [g for g in report.goals(rows, None) if "CPU per notification" in g.what]
    assert goal.met is False and goal.verdict == "**not met**"
