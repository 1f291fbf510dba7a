"""A Dask worker process killed mid-forecast: the nanny restarts it, the scheduler reruns the
lost tasks, and the result is identical to the single-process forecast."""

import os
import signal
import sys
import time

import numpy as np
import pytest
import torch

import stgeo

pytestmark = pytest.mark.slow


class SlowPersistence(torch.nn.Module):
    """Repeats the last input frame; sleeps so that a worker can be killed mid-run."""

    def __init__(self, out_steps: int = 2, delay: float = 0.25):
        super().__init__()
        self.out_steps, self.delay = out_steps, delay
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        time.sleep(self.delay)
        return (x[:, -1:] * self.scale).repeat(1, self.out_steps, 1, 1, 1)


def _finished_tasks(dask_scheduler, prefix):
    return sum(
        1 for k, ts in dask_scheduler.tasks.items() if prefix in str(k) and ts.state == "memory"
    )


def test_killed_worker_mid_forecast_gives_identical_output():
    distributed = pytest.importorskip("distributed")
    import cloudpickle

    # the module is defined here (not importable on workers): ship it by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ds = stgeo.testing.storm_cells(n_times=20, shape=(16, 16), seed=3)
    model = SlowPersistence()
    kw = dict(in_steps=2, lead_steps=2, batch_size=1)
    eager = stgeo.forecast(ds, SlowPersistence(delay=0.0), progress=False, **kw)
    t0 = time.monotonic()
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit="1GiB",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        lazy = stgeo.forecast(ds, model, lazy=True, chunk_size=1, **kw)
        prefix = lazy.data.name.split("-")[0]
        future = client.compute(lazy)
        deadline = time.monotonic() + 30
        while client.run_on_scheduler(_finished_tasks, prefix=prefix) < 3:
            assert time.monotonic() < deadline, "no forecast task finished in 30 s"
            time.sleep(0.05)
        assert not future.done()  # killed mid-forecast, not after it
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)
        result = future.result(timeout=60)
        # the nanny restarted the killed worker: two workers again, none with the old pid
        client.wait_for_workers(2, timeout=30)
        assert victim not in client.run(os.getpid).values()
    np.testing.assert_array_equal(result.values, eager.values)
    assert result.dims == eager.dims
    np.testing.assert_array_equal(result.init_time.values, eager.init_time.values)
    assert time.monotonic() - t0 < 60
