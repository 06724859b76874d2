"""Training past one machine: two "nodes" on 127.0.0.1 meeting at torchrun's c10d rendezvous (gloo), a node killed
mid-run and the run resumed, a rendezvous that never completes, options that differ between nodes, and sharding
refused where it cannot run."""

import importlib.util
import os
import signal
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import run_cli, tiny_config
from transformers import Seq2SeqTrainingArguments

from core.errors import StudioError
from core.training import RunFolder, resume_run, start_run, wait_for
from core.training.parallel import FSDP_LAYERS, sharding_arguments
from core.training.run_records import row_kind
from core.training.streaming import node_rows

ENDED = ("completed", "stopped", "failed", "interrupted")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_of(run: RunFolder) -> list[int]:
    """Live processes whose command line names the run folder (launchers, torchrun's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if str(run.path) in command and state != "Z":
            found.append(int(entry.name))
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (torchrun starts each worker in a process session of its own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1]) if entry.name.isdigit() else None
        except (OSError, IndexError, ValueError):
            continue
        if parent is not None:
            children.setdefault(parent, []).append(int(entry.name))
    tree, queue = [], [pid]
    while queue:
        tree.append(queue.pop())
        queue += children.get(tree[-1], [])
    return tree


def gone(run: RunFolder, within_s: float) -> list[int]:
    """The run's processes still alive after waiting up to `within_s` for them to end."""
    deadline = time.time() + within_s
    while processes_of(run) and time.time() < deadline:
        time.sleep(0.5)
    return processes_of(run)


def quick(run: str, **changes):
    """Two steps of the demo, evaluated and saved at the end, no held-out split and no guard sets: seconds of work."""
    small = dict(max_steps=2, logging_steps=1, eval_steps=2, save_steps=2, warmup_steps=1, max_eval_samples=4)
    return tiny_config(run, test_split="", english_guard=False, **{**small, **changes})


def two_nodes(run: str, timeout_s: int = 90, **changes):
    """Node 0's config of a run on two nodes of one process each, meeting on this machine."""
    endpoint = f"127.0.0.1:{free_port()}"
    return quick(run, nproc=1, nnodes=2, rdzv_endpoint=endpoint, rdzv_timeout=timeout_s, **changes)


def losses_and_wers(run: RunFolder) -> tuple[dict, dict]:
    rows = run.metrics()
    losses = {r["step"]: r["loss"] for r in rows if "loss" in r}
    return losses, {r["step"]: r["eval_wer"] for r in rows if "eval_wer" in r}


@pytest.mark.slow
@pytest.mark.long
def test_two_nodes_train_as_one_node_with_two_processes(workspace, demo_artifact):
    one = start_run(quick("one-node", nproc=2), workspace, foreground=True)
    assert one.status().state == "completed", one.log_tail(30)
    node0 = two_nodes("two-nodes")
    run = start_run(node0, workspace)  # node 0: makes the run folder, hosts the rendezvous
    start_run(replace(node0, node_rank=1), workspace)  # node 1: waits for node 0, then joins
    status = wait_for(run, 240, ENDED)
    assert status.state == "completed" and status.step == 2, run.log_tail(40)
    # the same world of two processes, the same seed and data: the same losses and validation WER
    (one_loss, one_wer), (two_loss, two_wer) = losses_and_wers(one), losses_and_wers(run)
    assert list(two_loss) == [1, 2] and list(two_wer) == [0, 2]
    assert two_loss == pytest.approx(one_loss, rel=1e-5) and two_wer == pytest.approx(one_wer)
    logs = (run.path / "train.log").read_text() + run.log_path(1).read_text()
    assert "worker rank 0 of 2" in logs and "worker rank 1 of 2" in logs
    assert run.node(1)["pid"] and run.log_path(1).name == "train-node1.log"
    assert run.best_checkpoint_name() == "checkpoint-2" and (run.path / "checkpoint-2" / "model.safetensors").is_file()
    assert not gone(run, 30)


@pytest.mark.slow
@pytest.mark.long
def test_a_node_killed_mid_run_leaves_a_run_that_resume_finishes(workspace, demo_artifact):
    node0 = two_nodes("node-dies", max_steps=4)
    run = start_run(node0, workspace)
    start_run(replace(node0, node_rank=1), workspace)
    deadline = time.time() + 240
    while not run.checkpoints() and time.time() < deadline and run.status().state not in ENDED:
        time.sleep(0.2)
    assert run.checkpoints(), run.log_tail(40)
    for pid in process_tree(run.node(1)["pid"]):  # node 1 dies: its launcher and its worker, at once
        os.kill(pid, signal.SIGKILL)
    status = wait_for(run, 120, ("failed", "interrupted"))
    assert status.resumable, (status, run.log_tail(40))
    assert not gone(run, 60)  # node 0 noticed and ended too: nothing of the run is left running
    saved = run.last_checkpoint().name
    resume_run(run, workspace)  # node 0 resumes the run …
    resume_run(run, workspace, node_rank=1)  # … and node 1 joins it again
    status = wait_for(run, 240, ENDED)
    assert status.state == "completed" and status.step == 4, run.log_tail(40)
    assert status.resumed_from == saved
    keys = [(r["step"], row_kind(r)) for r in run.metrics()]
    assert len(keys) == len(set(keys)), keys  # the rows after the checkpoint were dropped, then logged once
    assert [s for s, k in keys if k == "train"] == [1, 2, 3, 4]
    assert not gone(run, 30)


@pytest.mark.slow
@pytest.mark.long
def test_node_0_alone_refuses_other_options_and_gives_up_after_its_timeout(workspace, demo_artifact):
    node0 = two_nodes("alone", timeout_s=15)
    run = start_run(node0, workspace)
    started = time.time()
    with pytest.raises(StudioError, match=r"learning_rate 0\.01 here, 0\.003 on node 0") as refused:
        start_run(replace(node0, node_rank=1, learning_rate=0.01), workspace)
    assert "\n" not in str(refused.value) and "same command but for --node-rank" in str(refused.value)
    assert run.node(1) is None  # the refused node started nothing
    status = wait_for(run, 90, ENDED)
    assert status.state == "failed", run.log_tail(30)
    assert status.error.startswith("the other 1 node(s) did not join within 15 s") and "\n" not in status.error
    assert time.time() - started < 15 + 60  # the stated timeout, plus torchrun's start and shutdown
    assert not gone(run, 30)


@pytest.mark.slow  # over 4 s: out of the fast lane
def test_an_unreachable_rendezvous_fails_in_one_line_after_its_timeout(workspace, demo_artifact):
    endpoint = f"127.0.0.1:{free_port()}"  # nothing listens there
    args = ["train", "--data", "nb-tiny", "--run", "lonely", "--preset", "demo", "--nnodes", "2", "--node-rank", "1"]
    started = time.time()
    result = run_cli(*args, "--rdzv-endpoint", endpoint, "--rdzv-timeout", "3", home=workspace.home)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: rendezvous endpoint {endpoint} did not answer within 3 s: start node 0 first")
    assert 3 <= time.time() - started < 60
    assert not RunFolder.of(workspace, "lonely").path.exists()  # a joining node never makes the run folder


def test_node_0_refuses_an_endpoint_that_is_not_its_own_or_is_taken(workspace, demo_artifact):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = replace(quick("taken"), nnodes=2, rdzv_endpoint=f"127.0.0.1:{port}")
        with pytest.raises(StudioError, match=f"port {port} is in use on this machine"):
            start_run(config, workspace)
    with pytest.raises(StudioError, match="'192.0.2.7' is not an address of this machine"):  # TEST-NET-1
        start_run(replace(config, rdzv_endpoint="192.0.2.7:29400"), workspace)
    assert not RunFolder.of(workspace, "taken").path.exists()


def test_node_options_are_checked_before_anything_starts():
    for changes, message in (
        (dict(nnodes=2), "rdzv_endpoint '': give HOST:PORT"),
        (dict(nnodes=2, rdzv_endpoint="10.0.0.1"), "rdzv_endpoint '10.0.0.1': give HOST:PORT"),
        (dict(node_rank=2, nnodes=2, rdzv_endpoint="10.0.0.1:29400"), "node_rank 2 with nnodes 2: give 0 to 1"),
        (dict(rdzv_endpoint="10.0.0.1:29400"), "set nnodes to the number of machines"),
        (dict(sharding="fsdp"), "sharding fsdp splits the model across processes, and this run has one"),
        (dict(sharding="zero3", nproc=2, lora_rank=8), "sharding zero3 with lora_rank 8"),
        (dict(guard_stop=True, nnodes=2, rdzv_endpoint="10.0.0.1:29400"), "guard_stop ends training"),
    ):
        with pytest.raises(StudioError, match=message):
            replace(quick("checked"), **changes).validate()


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine sharding runs (bench/gpu_check.sh)")
def test_sharding_is_refused_in_one_line_where_it_cannot_run(workspace, demo_artifact):
    result = run_cli(
        "train", "--data", "nb-tiny", "--run", "sharded", "--preset", "demo", "--nproc", "2", "--sharding", "fsdp",
        home=workspace.home,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: sharding fsdp needs CUDA GPUs: accelerate applies FSDP and DeepSpeed only to GPU processes, and on a "
        "CPU the run would train unsharded; on this machine choose sharding none"
    )
    if importlib.util.find_spec("deepspeed") is None:
        with pytest.raises(StudioError, match="sharding zero2 is DeepSpeed ZeRO, and the deepspeed package is not"):
            replace(quick("zero"), nproc=2, sharding="zero2").validate()


def test_fsdp_arguments_are_read_by_the_trainer_as_meant():
    """Our FSDP options, parsed by transformers' own TrainingArguments (the part that runs without a GPU)."""
    arguments = sharding_arguments(replace(quick("fsdp"), sharding="fsdp", gradient_checkpointing=True))
    args = Seq2SeqTrainingArguments(output_dir="unused", use_cpu=True, report_to=[], **arguments)
    plugin = args.fsdp_plugin_args
    assert plugin["fsdp_version"] == 2 and plugin["state_dict_type"] == "FULL_STATE_DICT"
    assert plugin["transformer_cls_names_to_wrap"] == ",".join(FSDP_LAYERS) and plugin["activation_checkpointing"]
    assert plugin["reshard_after_forward"] is True
    assert sharding_arguments(quick("plain")) == {}


def test_a_folder_stream_is_shared_out_by_rank(synth_folder):
    """A local folder streamed per rank: every other row each, none twice, none lost."""
    from core.data import FolderSource, PrepareOptions

    options = PrepareOptions()
    whole = [e.id for e in node_rows(FolderSource(synth_folder), options, 0, 1)]
    shares = [[e.id for e in node_rows(FolderSource(synth_folder), options, rank, 2)] for rank in (0, 1)]
    assert shares == [whole[0::2], whole[1::2]] and len(whole) == 24


def test_a_rank_0_on_another_host_is_judged_by_its_heartbeat(workspace):
    """On several nodes, rank 0's pid may belong to another machine: there only its heartbeat tells whether it lives."""
    run = RunFolder.of(workspace, "remote")
    run.path.mkdir(parents=True)
    run.write_config(quick("remote"))
    dead_here = 2**22 + 1  # above Linux's default pid_max: no process here has it
    run.update_status(state="running", pid=dead_here, host="node-7.cluster", heartbeat=time.time())
    assert run.status().state == "running"  # a pid on another host is not looked up here
    run.update_status(heartbeat=time.time() - 120)
    status = run.status()
    assert status.state == "interrupted" and status.resumable and "node-7.cluster" in status.error
    run.update_status(host=None, heartbeat=time.time())  # a run folder from before hosts were recorded: the pid rules
    assert run.status().state == "interrupted"
