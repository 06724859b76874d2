"""Training on several machines (nodes): torchrun's c10d rendezvous, each node's launcher, and a node joining the run
that node 0 started.

Every node runs the same command but for its node rank (`train … --nnodes 2 --node-rank R --rdzv-endpoint
HOST:PORT`), with the workspace, and so the run folder, on storage every node sees (NFS, a cluster file system):
- node 0 makes the run folder, writes config.json and hosts the rendezvous at HOST:PORT, its own address;
- node R > 0 waits, at most rdzv_timeout seconds, for the endpoint to answer and for node 0's run folder to appear,
  refuses options that differ from node 0's, then starts its processes, its output in train-nodeR.log.
torchrun numbers the processes itself (the rendezvous sorts the nodes by host name and process id), so global rank 0,
the one process that writes the run folder, may run on any node: status.json names its host. A joining node always
continues from the run folder's last checkpoint, if there is one: a new run has none, and a resumed one continues
from it on every node alike.

Each node's launcher is `python -m core.training.nodes RUN_DIR --node-rank R`: torchrun in this process, so that a
rendezvous that never completes ends as one line (in status.json on node 0) rather than a traceback.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

from core.errors import DamagedFile, StudioError
from core.training.config import TrainConfig
from core.training.config_checks import parse_endpoint
from core.training.run_records import RunState
from core.training.runs import RunFolder

WORKER = ["-m", "core.training.worker"]
PROBE_S = 0.5  # seconds between two looks at the endpoint or the run folder while a node waits
NOT_COMPARED = ("node_rank",)  # the one option that differs between the nodes of a run


def torchrun_args(config: TrainConfig, run_name: str, node_rank: int) -> list[str]:
    """torchrun's options for this node: `--standalone` on one node; on several, a c10d rendezvous that node 0
    hosts (is_host), every wait bounded by rdzv_timeout, and no restarts (a dead node ends the run, `resume` goes
    on from its last checkpoint)."""
    if config.nnodes == 1:
        return ["--standalone", f"--nproc-per-node={config.nproc}"]
    timeout = config.rdzv_timeout
    return [
        f"--nnodes={config.nnodes}",
        f"--nproc-per-node={config.nproc}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={config.rdzv_endpoint}",
        f"--rdzv-id={run_name}",
        f"--rdzv-conf=is_host={str(node_rank == 0).lower()},join_timeout={timeout},read_timeout={timeout}",
        "--max-restarts=0",
    ]


def launcher_args(run: RunFolder, node_rank: int, resume: bool) -> list[str]:
    """`python ARGS` that starts this node's processes (core/training/jobs.py spawns it)."""
    return ["-m", "core.training.nodes", str(run.path), f"--node-rank={node_rank}"] + (["--resume"] if resume else [])


def check_endpoint_here(endpoint: str) -> None:
    """Node 0 hosts the rendezvous: its HOST must be this machine and its PORT free (a bind tells both at once)."""
    host, port = parse_endpoint(endpoint)
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as err:
        raise StudioError(f"rdzv_endpoint {endpoint}: the host '{host}' is unknown ({err.strerror})") from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free for the store too
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise StudioError(
                    f"rdzv_endpoint {endpoint}: port {port} is in use on this machine; choose another free port, the "
                    "same on every node"
                ) from None
            raise StudioError(
                f"rdzv_endpoint {endpoint}: '{host}' is not an address of this machine ({err.strerror}); node 0 hosts "
                "the rendezvous: give node 0's own address, and start node 0 on that machine"
            ) from None


def wait_for_endpoint(endpoint: str, deadline: float, timeout_s: int) -> None:
    """Return once something listens at HOST:PORT (node 0's rendezvous); one line when nothing has by `deadline`."""
    host, port = parse_endpoint(endpoint)
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=max(0.1, min(2.0, left))):
                return
        except OSError:
            if left <= 0:
                raise StudioError(
                    f"rendezvous endpoint {endpoint} did not answer within {timeout_s} s: start node 0 first (the same "
                    "command with --node-rank 0, on the machine at that address), check the address, the port and the "
                    "firewall between the nodes, or raise rdzv_timeout"
                ) from None
            time.sleep(min(PROBE_S, max(0.0, left)))


def wait_for_run_config(run: RunFolder, deadline: float, endpoint: str) -> TrainConfig:
    """Node 0's config of the run, once its folder shows on this node's storage."""
    while True:
        try:
            if run.exists():
                return run.config()
        except DamagedFile:
            pass  # being written over a network file system: look again
        if time.monotonic() > deadline:
            raise StudioError(
                f"node 0 answers at {endpoint}, but its run '{run.name}' does not appear in {run.path.parent}: every "
                "node needs the same workspace on shared storage (NFS, a cluster file system), given with the same "
                "--home, and the same --run"
            )
        time.sleep(PROBE_S)


def config_differences(mine: TrainConfig, theirs: TrainConfig) -> list[str]:
    """'learning_rate 0.001 here, 0.003 on node 0' for each option (but node_rank) in which two nodes differ."""
    return [
        f"{f.name} {getattr(mine, f.name)!r} here, {getattr(theirs, f.name)!r} on node 0"
        for f in fields(TrainConfig)
        if f.name not in NOT_COMPARED and getattr(mine, f.name) != getattr(theirs, f.name)
    ]


def join_run(config: TrainConfig, run: RunFolder, compare: bool) -> TrainConfig:
    """Wait for node 0 (its rendezvous, then its run folder) and return its config with this node's rank; with
    `compare`, refuse this node's own options where they differ from node 0's."""
    deadline = time.monotonic() + config.rdzv_timeout
    wait_for_endpoint(config.rdzv_endpoint, deadline, config.rdzv_timeout)
    theirs = wait_for_run_config(run, deadline, config.rdzv_endpoint)
    differences = config_differences(config, theirs) if compare else []
    if differences:
        raise StudioError(
            f"node {config.node_rank}'s options differ from run '{run.name}' as node 0 started it: "
            + "; ".join(differences)
            + ". Every node runs the same command but for --node-rank"
        )
    return replace(theirs, node_rank=config.node_rank)


def rendezvous_failure(config: TrainConfig, node_rank: int, err: BaseException) -> str:
    """One line for a rendezvous that did not complete."""
    from torch.distributed.elastic.rendezvous.api import RendezvousTimeoutError

    if isinstance(err, RendezvousTimeoutError) and node_rank == 0:
        return (
            f"the other {config.nnodes - 1} node(s) did not join within {config.rdzv_timeout} s at "
            f"{config.rdzv_endpoint}: start them with the same command and --node-rank 1…{config.nnodes - 1}, then "
            "resume this run (or raise rdzv_timeout)"
        )
    first = (str(err).splitlines() or [""])[0][:200]
    return (
        f"the rendezvous at {config.rdzv_endpoint or 'this machine'} failed ({type(err).__name__}: {first}); check "
        "that every node runs the same command and reaches that address, then resume"
    )


def run_launcher(run_dir: Path, node_rank: int, resume: bool) -> int:
    """This node's processes through torchrun, in this process; a failed rendezvous becomes one line."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.run import parse_args
    from torch.distributed.run import run as torchrun

    run = RunFolder(run_dir)
    config = run.config()
    worker = [*WORKER, str(run.path)] + (["--resume"] if resume else [])
    try:
        torchrun(parse_args([*torchrun_args(config, run.name, node_rank), *worker]))
        return 0
    except RendezvousError as err:
        line = rendezvous_failure(config, node_rank, err)
        print(f"error: {line}", file=sys.stderr, flush=True)
        if node_rank == 0 and run.status().live:
            run.update_status(state=RunState.FAILED, error=line, finished=time.time(), heartbeat=time.time())
        return 1
    except ChildFailedError:
        return 1  # a process of this node failed: the traceback is above, rank 0 recorded its own end


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--node-rank", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    return run_launcher(args.run_dir.resolve(), args.node_rank, args.resume)


if __name__ == "__main__":
    raise SystemExit(main())
