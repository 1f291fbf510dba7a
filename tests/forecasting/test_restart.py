"""A forecast-to-Zarr run on a Dask cluster, killed mid-way and restarted with the same
arguments, computes only the missing regions and ends identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import xarray as xr

import stgeo

pytest.importorskip("distributed")

_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import torch
    import stgeo

    class Slow(torch.nn.Module):
        '''Persistence times 0.5, slowly; appends the batch size of every call to a file.'''

        def __init__(self, counter, pause):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(0.5))
            self.counter, self.pause = counter, pause

        def forward(self, x):
            with open(self.counter, "a") as f:
                f.write(f"{x.shape[0]}\\n")
            time.sleep(self.pause)
            return x[:, -1:].repeat(1, 2, 1, 1, 1) * self.w

    def run(data, out, counter, pause, cluster):
        kw = dict(in_steps=2, lead_steps=2, batch_size=2, device="cpu", precision="fp32",
                  progress=False, output=out)
        if not cluster:
            return stgeo.forecast(data, Slow(counter, pause), **kw)
        import distributed

        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as c, distributed.Client(c):
            return stgeo.forecast(data, Slow(counter, pause), lazy=True, chunk_size=2, **kw)

    if __name__ == "__main__":
        data, out, counter, pause = sys.argv[1:5]
        run(data, out, counter, float(pause), cluster=True)
        print("done")
    """
)
N_REGIONS = 10  # 20 initial times, 2 per region


def _calls(counter) -> int:
    """Forward passes on real batches (the one-window probe of a bare module excluded)."""
    if not os.path.exists(counter):
        return 0
    return sum(1 for line in open(counter) if line.strip() == "2")


def _done(out) -> list[int]:
    prog = out.with_name(f".{out.name}.progress.json")
    return json.loads(prog.read_text())["done"] if prog.exists() else []


@pytest.mark.slow
def test_killed_dask_forecast_restarts_where_it_stopped(tmp_path):
    ds = stgeo.testing.storm_cells(n_times=21, shape=(16, 16), seed=7)
    data = stgeo.to_zarr(ds, tmp_path / "obs.zarr", chunks={"time": 7})
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    out = tmp_path / "fc.zarr"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = tmp_path / "first.txt"
    args = [sys.executable, str(script), data, str(out)]
    proc = subprocess.Popen([*args, str(first), "0.4"], env=env, start_new_session=True)
    deadline = time.time() + 120
    while len(_done(out)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its cluster, without warning
    proc.wait()
    done = _done(out)
    assert 3 <= len(done) < N_REGIONS, done
    assert not out.exists()  # nothing published yet
    # restart with the same arguments: only the regions not recorded are computed
    again = tmp_path / "again.txt"
    res = subprocess.run([*args, str(again), "0"], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert _calls(again) == N_REGIONS - len(done)
    assert not out.with_name(f".{out.name}.progress.json").exists()
    # identical to an uninterrupted run (in this process, no cluster)
    sys.path.insert(0, str(tmp_path))
    try:
        import run as runner  # the same module class
    finally:
        sys.path.remove(str(tmp_path))
    ref = runner.run(data, tmp_path / "ref.zarr", str(tmp_path / "ref.txt"), 0, cluster=False)
    got = stgeo.open_dataset(out)
    xr.testing.assert_identical(got.rain_rate.load(), ref.load())
    assert stgeo.verify(out).ok
