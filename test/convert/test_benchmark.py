from dgslrm_ros.convert.benchmark import run_ros_benchmark


def test_quick_benchmark_rows():
    rows = run_ros_benchmark(device="cpu", quick=True)
    messages = {(r["message"], r["direction"]) for r in rows}
    assert ("Image 640x480 bgr8", "unpack") in messages and ("Image 640x480 rgb8", "pack") in messages
    assert any(m.startswith("PointCloud2 gaussians") for m, _ in messages)
    assert any(m.startswith("PointCloud2 trajectories") for m, _ in messages)
    for row in rows:
        assert row["ms"] > 0 and row["memcpy_ms"] > 0 and row["memcpy_new_ms"] > 0 and row["MB"] > 0
        assert abs(row["ratio"] - row["ms"] / row["memcpy_ms"]) < 1e-6 * row["ratio"] + 1e-9
