"""Distributed training: dist helpers without a process group, and a 2-process gloo run under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from train_utils import image_list

from hyperland.train import dist


def test_helpers_fall_back_to_one_process() -> None:
    assert not dist.is_distributed()
    assert (dist.rank(), dist.world_size(), dist.is_main()) == (0, 1, True)
    t = torch.arange(6.0).view(3, 2)
    assert dist.all_gather_cat(t) is t
    assert dist.all_reduce_mean(t) is t and dist.all_reduce_sum_int(5) == 5
    assert dist.init_from_env() == dist.DistInfo(0, 1, 0)  # WORLD_SIZE unset: no process group
    dist.barrier()


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "hyperland.train", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False)


def test_two_process_gloo_run_pauses_and_resumes(mtfl_root: Path, tmp_path: Path) -> None:
    faces = image_list(mtfl_root, tmp_path, 64)
    run = tmp_path / "run"
    flags = ["--data", str(faces), "--architecture", "test_resnet", "--resize", "40", "--border", "4",
             "--batch-size", "16", "--queue-size", "48", "--epochs", "2", "--num-workers", "0",
             "--shuffle-groups", "1", "--log-every", "1"]
    first = _torchrun([*flags, "--out", str(run), "--max-steps", "3"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "4 steps/epoch x 2 epochs on 2 process(es)" in first.stdout
    assert first.stdout.count("paused at epoch 0, step 3") == 1  # rank 0 alone reports and writes
    second = _torchrun(["--resume", str(run)], tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "starting at step 3" in second.stdout and "finished at epoch 2, step 8" in second.stdout
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 9))  # one line per step: only rank 0 writes
    ckpt = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    assert ckpt["world_size"] == 2 and ckpt["state"]["finished"]
    assert int(ckpt["model"]["queue_ptr"]) == (8 * 16) % 48 == 32  # both ranks' keys enter the queue each step


def test_ddp_shuffle_across_two_ranks_equals_one_process_with_two_groups(tmp_path: Path) -> None:
    """MoCo's cross-rank shuffle (2 ranks × 1 BN group) computes what one process with 2 BN groups computes:
    the same loss, the same (averaged) gradient and the same queue of all keys."""
    import torch.multiprocessing as mp
    from train_utils import ddp_moco_step, toy_moco

    torch.manual_seed(3)
    batch = torch.rand(2, 16, 3, 8, 8)  # (query/key view, images, C, H, W)
    mp.start_processes(ddp_moco_step, args=(2, str(tmp_path / "store"), batch, str(tmp_path)), nprocs=2,
                       start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    ref = toy_moco(queue=24, groups=2)
    loss, _ = ref(batch[0], batch[1], shuffle=torch.Generator().manual_seed(11))
    loss.backward()
    assert torch.allclose((ranks[0]["loss"] + ranks[1]["loss"]) / 2, loss, atol=1e-6)
    for r in ranks:  # DDP averaged the gradients; every rank enqueued all 16 keys
        assert torch.allclose(r["grad"], ref.encoder_q.backbone.conv.weight.grad, atol=1e-6)
        assert torch.allclose(r["queue"], ref.queue, atol=1e-6) and int(r["ptr"]) == 16
