"""Pseudo-labelling: audio nobody transcribed → a label set (core/data/pseudo_labels.py) that prepare reads.

The rows come from core/speech/labeller.py (each clip's speech windows decoded by the decoding policy, with their
confidences); the thresholds route each to keep, review or drop.

`label_audio` is the one entry (the CLI's `label`). It claims the name and labels into `.NAME.partial` beside the
final folder: every clip's rows are appended to a shard file as soon as its audio is written, so a killed run loses
at most the clips in hand, and the same command resumes it. With `nproc` above 1 the labelling runs under torchrun
(the launcher training uses): rank r of w labels every w-th clip still to do into its own shard; with `nnodes` above
1 every machine runs the same command with its `node_rank` (the workspace on a shared file system) and node 0
merges. The merge puts the rows in the source's order and renames the folder: the set appears whole or not at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from core.data.label_options import DROP, KEEP, LabelOptions, LabelRow, LabelThresholds
from core.data.pseudo_labels import (
    LabelRecord,
    LabelSet,
    check_label_name,
    clip_name,
    labels_root,
    read_rows,
    write_label_set,
)
from core.data.unlabelled import unlabelled_audio
from core.errors import StudioError
from core.languages import get_language
from core.models.resolve import resolve_model
from core.speech.decoding import is_toy
from core.speech.labeller import ClipLabeller, flac_bytes
from core.training.jobs import torchrun_launcher
from core.workspace import Workspace, name_held, read_json_if_intact, write_bytes_atomic, write_json_atomic

REQUEST_FILE = "request.json"  # in the staging folder: what is being labelled (a resumed run must ask the same)
SHARDS = "shards"
# what a resumed run may change: how many processes label, not what they label or how
RESUMABLE_CHANGES = ("nproc", "nnodes", "node_rank", "master", "batch_size")
MERGE_WAIT_S = 24 * 3600  # node 0 waits this long for the other machines' shards


# --- one rank's shard


@dataclass(frozen=True)
class LabelRequest:
    """request.json: the options, thresholds and workspace of a label run, read by every rank."""

    options: LabelOptions
    thresholds: LabelThresholds
    home: str
    started: float

    def to_dict(self) -> dict:
        return {"options": asdict(self.options), "thresholds": asdict(self.thresholds), "home": self.home,
                "started": self.started}  # fmt: skip

    @classmethod
    def read(cls, staging: Path) -> LabelRequest:
        data = read_json_if_intact(staging / REQUEST_FILE)
        if not data:
            raise StudioError(f"{staging}: no readable {REQUEST_FILE}; start the label run again")
        return cls(
            LabelOptions(**data["options"]), LabelThresholds(**data["thresholds"]), data["home"], data["started"]
        )

    def same_work(self, other: LabelRequest) -> bool:
        mine, theirs = asdict(self.options), asdict(other.options)
        for name in RESUMABLE_CHANGES:
            mine.pop(name), theirs.pop(name)
        return mine == theirs and self.thresholds == other.thresholds


def shard_rows(staging: Path) -> list[LabelRow]:
    """Every row written so far, by any rank of any attempt (a clip labelled twice: the later rows)."""
    rows: dict[tuple[int, int], LabelRow] = {}
    for path in sorted((staging / SHARDS).glob("rank-*.jsonl")):
        for row in read_rows(path):
            rows[(row.index, row.part)] = row
    return list(rows.values())


def labelled_clips(rows: list[LabelRow]) -> set[int]:
    """The clips whose every row is written (a kill may cut a long recording's rows after some of its windows)."""
    written = Counter(row.index for row in rows)
    return {row.index for row in rows if written[row.index] >= row.parts}


@contextmanager
def _shard_file(path: Path) -> Iterator:
    """The rank's shard, opened to append; a line a kill cut short is cut off first (only this rank writes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])
    with open(path, "a", encoding="utf-8") as shard:
        yield shard


def label_shard(staging: Path, rank: int, world: int, progress: Callable | None = None) -> int:
    """Label this rank's share of the clips not yet done; returns how many clips it labelled."""
    request = LabelRequest.read(staging)
    options, thresholds = request.options, request.thresholds
    language = get_language(options.language or "en")
    examples = unlabelled_audio(options.source, language, options.config or None).examples[: options.max_clips]
    done = labelled_clips(shard_rows(staging))
    mine = [(i, e) for i, e in enumerate(examples) if i not in done][rank::world]
    if not mine:
        return 0
    labeller = ClipLabeller(options, Workspace(Path(request.home)))
    (staging / "clips").mkdir(exist_ok=True)
    with _shard_file(staging / SHARDS / f"rank-{rank}-of-{world}.jsonl") as shard:
        for at in range(0, len(mine), options.batch_size):
            lines = []
            for labelled in labeller.label(mine[at : at + options.batch_size]):
                row = labelled.row
                row.decision, row.reason = thresholds.route(row)
                if row.decision != DROP and labelled.samples is not None:
                    row.file_name = clip_name(row.index, row.part)
                    write_bytes_atomic(staging / row.file_name, flac_bytes(labelled.samples))
                lines.append(row.to_json() + "\n")
            shard.write("".join(lines))  # after their audio: a row in the shard has its clip
            shard.flush()
            os.fsync(shard.fileno())
            done_here = min(at + options.batch_size, len(mine))
            if progress:
                progress("label", done_here, len(mine))
            elif world > 1:
                print(f"rank {rank}/{world}: {done_here}/{len(mine)} clips", file=sys.stderr, flush=True)
    return len(mine)


def main() -> int:
    """`python -m core.speech.labelling STAGING`: one torchrun rank (RANK, WORLD_SIZE from torchrun)."""
    staging = Path(sys.argv[1])
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    try:
        label_shard(staging, rank, world)
    except StudioError as err:
        print(f"error: rank {rank}: {err}", file=sys.stderr)
        return 2
    (staging / SHARDS / f"done-{rank}-of-{world}").touch()
    return 0


# --- the run: claim, label (here or under torchrun), merge


@contextmanager
def _claim(workspace: Workspace, name: str) -> Iterator[None]:
    """One label run of a name at a time: a second is refused while the first holds the name."""
    busy = f"label set '{name}' is being labelled right now by another process; wait for it, or choose another name"
    with name_held(labels_root(workspace) / ".locks", name, busy):
        yield


def _staging(workspace: Workspace, request: LabelRequest) -> Path:
    """The run's staging folder, made for `request` or found from an interrupted run that asked the same."""
    staging = labels_root(workspace) / f".{request.options.name}.partial"
    earlier = read_json_if_intact(staging / REQUEST_FILE)
    if earlier and shard_rows(staging):
        found = LabelRequest.read(staging)
        if not found.same_work(request):
            raise StudioError(
                f"an interrupted label run '{request.options.name}' labelled with other options (model "
                f"{found.options.model}, source {found.options.source}); run it again with those to resume it, or "
                f"delete {staging} to start over"
            )
        return staging
    staging.mkdir(parents=True, exist_ok=True)
    write_json_atomic(staging / REQUEST_FILE, request.to_dict())
    return staging


def label_audio(
    options: LabelOptions, thresholds: LabelThresholds, workspace: Workspace, progress: Callable | None = None
) -> LabelSet | None:
    """Label `options.source` into the label set `options.name` (resuming an interrupted run of the same request);
    returns it, or None on a machine other than node 0 (which merges)."""
    # 1. Check the request and the name; find the clips (a folder without audio is refused here).
    options, thresholds = options.validate(), thresholds.validate()
    final = check_label_name(workspace, options.name)
    where = Path(options.source).expanduser()
    if where.exists():  # a folder is asked for by its whole path: a resumed run may be started from elsewhere
        options = replace(options, source=str(where.resolve()))
    found = unlabelled_audio(options.source, get_language(options.language or "en"), options.config or None)
    for model in filter(None, (options.model, options.agree_with)):
        resolve_model(model, workspace)  # a model name that means nothing is refused before any work
    total = len(found.examples[: options.max_clips])
    lead = options.node_rank == 0
    with _claim(workspace, options.name) if lead else _nothing():
        # 2. The staging folder: new, or an interrupted run's (same request) to resume.
        request = LabelRequest(options, thresholds, str(workspace.home), time.time())
        staging = _staging(workspace, request)
        # 3. Label: in this process, or one process per rank under torchrun.
        if options.world == 1:
            label_shard(staging, 0, 1, progress)
        else:
            _label_under_torchrun(staging, options)
        if not lead:
            return None
        # 4. Merge the shards (node 0), route, and put the set in place.
        _wait_for_shards(staging, options.world)
        return _merge(staging, final, LabelRequest.read(staging), found.description, total)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _label_under_torchrun(staging: Path, options: LabelOptions) -> None:
    if options.nnodes == 1:
        for stale in (staging / SHARDS).glob("done-*"):
            stale.unlink()  # markers of an earlier attempt: this one writes its own
    launcher = torchrun_launcher(options.nproc, options.nnodes, options.node_rank, options.master)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("OPENAI_API_KEY", None)  # nothing here needs it
    done = subprocess.run([sys.executable, *launcher, "-m", "core.speech.labelling", str(staging)], env=env)
    if done.returncode:
        raise StudioError(
            f"labelling stopped in a torchrun rank (exit status {done.returncode}; its lines are above); what was "
            f"labelled is kept: run the same command again to resume"
        )


def _wait_for_shards(staging: Path, world: int) -> None:
    """Until every rank of every machine has marked its shard done (at once on one machine)."""
    if world == 1:
        return
    deadline = time.time() + MERGE_WAIT_S
    while not all((staging / SHARDS / f"done-{r}-of-{world}").exists() for r in range(world)):
        if time.time() > deadline:
            raise StudioError(f"the other machines' shards were not done within a day; see {staging / SHARDS}")
        time.sleep(2)


def _merge(staging: Path, final: Path, request: LabelRequest, description: dict, total: int) -> LabelSet:
    rows = shard_rows(staging)
    missing = sorted(set(range(total)) - labelled_clips(rows))
    if missing:
        raise StudioError(
            f"{len(missing)} clips are not labelled yet (the first: {missing[0]}); run the same command again to resume"
        )
    counts = Counter(r.decision for r in rows)
    if not counts[KEEP] + counts["review"]:
        reasons = Counter(r.reason.split(" (")[0] for r in rows).most_common(2)
        shutil.rmtree(staging, ignore_errors=True)  # nothing to keep: the name is free again
        raise StudioError(
            f"{request.options.source}: none of its {total} clips gave a transcript to keep or review ("
            + "; ".join(f"{n}: {why}" for why, n in reasons)
            + "); give audio with speech in it"
        )
    options = request.options
    spoken = Counter(r.language for r in rows if r.text)
    language = options.language or get_language(spoken.most_common(1)[0][0]).code
    record = LabelRecord(
        name=options.name,
        source=description,
        model=options.model,
        agree_with=options.agree_with,
        language=get_language(language).code,
        thresholds=asdict(request.thresholds),
        decoding={"beam_size": options.beam_size, "toy_greedy": is_toy(options.model)},
        counts={d: counts[d] for d in ("keep", "review", "drop")},
        seconds=round(sum(r.seconds for r in rows), 2),
        wall_seconds=round(time.time() - request.started, 1),
        ranks=options.world,
    )
    write_label_set(staging, rows, record)
    shutil.rmtree(staging / SHARDS, ignore_errors=True)
    (staging / REQUEST_FILE).unlink(missing_ok=True)
    os.replace(staging, final)
    return LabelSet(final)


if __name__ == "__main__":
    raise SystemExit(main())
