"""`prs bench llm`, short: the bundled model directly, through a node and through the cluster client, same prompt."""

from __future__ import annotations

import pytest

from backend.config import Settings
from bench.llm import Timing, run_llm_bench, summarise


def test_decode_speed_counts_the_tokens_after_the_first_over_the_time_since_it():
    assert Timing(ttft_ms=100.0, tokens=11, decode_s=0.5).tokens_per_s == 20.0
    assert Timing(ttft_ms=100.0, tokens=1, decode_s=0.0).tokens_per_s == 0.0


def test_ratios_compare_each_path_with_direct_and_the_headline_is_the_cluster_client():
    runs = {
        "direct": [Timing(100.0, 21, 1.0), Timing(120.0, 21, 1.0)],
        "node": [Timing(110.0, 21, 1.0), Timing(130.0, 21, 1.0)],
        "cluster": [Timing(121.0, 21, 2.0), Timing(121.0, 21, 2.0)],
    }
    summary = summarise(runs)
    assert summary["node_ttft_ratio"] == round(120 / 110, 3)
    assert summary["ttft_ratio"] == summary["cluster_ttft_ratio"] == 1.1
    assert summary["tps_ratio"] == 0.5


@pytest.mark.asyncio
async def test_the_bench_times_every_path_on_the_real_model_and_reports_the_nodes_memory(
    database_url, llm_node_factory
):
    settings = Settings(database_url=database_url, data_dir=llm_node_factory.data_dir)
    result = await run_llm_bench(settings, runs=5, max_tokens=12, threads=1)
    for path in ("direct", "node", "cluster"):
        assert result[path]["ttft_p50_ms"] > 0 and result[path]["tokens_per_s_p50"] > 0
    assert result["direct"]["tokens_p50"] == result["node"]["tokens_p50"] == result["cluster"]["tokens_p50"]
    assert 0 < result["ttft_ratio"] < 10 and 0 < result["tps_ratio"] < 10
    assert 50 < result["node_rss_mb"] < 4000
