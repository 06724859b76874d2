"""The models a server answers with: what `/v1/models` lists, and loading them without holding up anyone else.

Listed are the served model, the base models and every checkpoint and export of the workspace's runs, under opaque
ids: a name as given (`whisper-base`, `demo`, a Hub id), a folder of the workspace by its path inside it
(`nb-1/checkpoint-400`), the served folder from elsewhere by its name alone. No absolute path is ever shown, and a
folder outside the workspace (a run symlinked elsewhere, a run's base model given as a path) is not listed.
Only models that can be loaded now are listed: a Hub id only when it is in the Hugging Face cache, unless the
operator started the server with `--allow-download` (loading a new model from the Hub is the operator's choice,
not a client's).

Each model is loaded once, on a loader thread of its own, and kept (the served one always, the last other one a
request named beside it); a request for a loaded model never waits for another one to load. Each loaded model has
its engine loop (core/speech/batching.py), where every request's windows meet.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from core.errors import StudioError
from core.models.hf_folders import PROCESSOR_FILES
from core.models.installed import installed_name
from core.models.resolve import BASE_MODELS, CT2_MARKERS, DEMO
from core.speech.batching import EngineLoop
from core.speech.openai_api import OPENAI_ALIAS, ApiError
from core.workspace import Workspace

MODELS_KEPT = 2  # transcribers in memory: the served model and the last other one a request named


@dataclass(frozen=True)
class EngineSettings:
    batch: int  # windows per engine call at most
    wait_s: float  # how long a loop waits for more work after the first item
    loops: int  # engine loops per loaded model
    observe: Callable[[int], None] | None = None  # told each batch's size


class LoadedModel:
    """A transcriber, its engine loop, and how many requests use it now."""

    def __init__(self, location: str, transcriber, settings: EngineSettings):
        self.location, self.transcriber = location, transcriber
        self.loop = EngineLoop(transcriber.backend, settings.batch, settings.wait_s, settings.loops, settings.observe)
        self.users, self.evicted = 0, False


def model_id(location: str, workspace: Workspace) -> str | None:
    """How /v1/models names a model, or None when it is not to be listed: a name as given; a folder inside the
    workspace by its path under the runs folder (`nb-1/checkpoint-400`) or the workspace; a folder elsewhere (or
    one that resolves elsewhere, through a symlink) None."""
    path = Path(location).expanduser()
    if location in BASE_MODELS.values() or not path.is_dir():
        return None if path.is_absolute() else location
    home = workspace.home.resolve()
    if not path.resolve().is_relative_to(home):
        return None
    absolute = path.absolute()
    for root in (workspace.runs, workspace.home):
        for base in (root.absolute(), root.resolve()):
            if absolute.is_relative_to(base):
                return absolute.relative_to(base).as_posix()
    return path.resolve().relative_to(home).as_posix()


def loadable(location: str, allow_download: bool) -> bool:
    """Whether `location` can be loaded now without the Hub (or with it, when the operator allows downloads)."""
    if location == DEMO or installed_name(location):
        return True
    path = Path(location).expanduser()
    if path.is_dir():
        markers = ("config.json", "model.bin", *PROCESSOR_FILES, *CT2_MARKERS)
        return any((path / name).is_file() for name in markers)
    if not _hub_id(location):
        return False
    if allow_download:
        return True
    from huggingface_hub import try_to_load_from_cache  # a look in the local cache: no network

    return isinstance(try_to_load_from_cache(location, "config.json"), str)


def _hub_id(name: str) -> bool:
    """`owner/name` as the Hub spells a model, and no local path."""
    owner, slash, model = name.partition("/")
    plain = all(part and part[0].isalnum() and all(c.isalnum() or c in "-_." for c in part) for part in (owner, model))
    return bool(slash) and plain and not Path(name).expanduser().exists()


class ModelPool:
    """The served model and the others a request may name; `acquire` a loaded one, `release` it when done."""

    def __init__(
        self,
        served: str,
        workspace: Workspace,
        checkpoints: Callable[[], Mapping[str, str]],
        settings: EngineSettings,
        allow_download: bool = False,
    ):
        self.served, self.workspace, self.checkpoints = served, workspace, checkpoints
        self.settings, self.allow_download = settings, allow_download
        self.served_id = model_id(served, workspace) or Path(served).name
        self.loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._loading: dict[str, Future] = {}
        self._lock = threading.Lock()  # guards the two dicts only: never held while a model loads
        self._one_load = threading.Lock()  # one load at a time: two would hold two new models in memory at once

    def catalog(self) -> dict[str, str]:
        """Model id → what the Transcriber loads: the served model first, the base models, then every checkpoint
        and export (`checkpoints` is core.evaluation's label → location listing, the one the pages' pickers use),
        only those that can be loaded and are not outside the workspace."""
        catalog = {self.served_id: self.served}
        for location in [*BASE_MODELS.values(), *self.checkpoints().values()]:
            identifier = model_id(location, self.workspace)
            if identifier and identifier not in catalog and loadable(location, self.allow_download):
                catalog[identifier] = location
        return catalog

    def location(self, requested: str) -> str:
        """What a request's `model` names, or a 400 listing the choices (code model_not_found)."""
        if requested in (OPENAI_ALIAS, self.served, self.served_id):
            return self.served
        catalog = self.catalog()
        if requested in catalog:
            return catalog[requested]
        if self.allow_download and _hub_id(requested):
            return requested  # the operator lets requests fetch Hub models
        hint = "" if self.allow_download else " (a Hub model is served once it is downloaded, or with --allow-download)"
        raise ApiError(
            400,
            f"model '{requested}' is not served here: choose {OPENAI_ALIAS} (the served model) or one of "
            f"{', '.join(catalog)} (GET /v1/models lists them){hint}",
            "model",
            "model_not_found",
        )

    def load_now(self, location: str) -> LoadedModel:
        """Load `location` on this thread (the served model, before the server answers) and keep it."""
        model = self._load(location)
        with self._lock:
            self.loaded[location] = model
        return model

    async def acquire(self, location: str) -> LoadedModel:
        """The loaded model for `location`, loading it first on the loader thread when it is not (a request for
        another model meanwhile is not held up). Give it back with `release`."""
        with self._lock:
            model = self.loaded.get(location)
            if model is None:
                future = self._loading.get(location)
                if future is None:
                    future = self._loading[location] = self._start_load(location)
            else:
                model.users += 1
                self.loaded.move_to_end(location)
                return model
        model = await asyncio.shield(asyncio.wrap_future(future))  # a waiter that gives up leaves the load be
        with self._lock:
            model.users += 1
            if location in self.loaded:
                self.loaded.move_to_end(location)
        return model

    def release(self, model: LoadedModel) -> None:
        with self._lock:
            model.users -= 1
            close = model.evicted and model.users == 0
        if close:
            model.loop.close(timeout=0)

    def _start_load(self, location: str) -> Future:
        """Load on a daemon thread of its own: a load stuck on the network never keeps the process from exiting."""
        future: Future = Future()
        future.set_running_or_notify_cancel()  # running: nothing cancels it, the requests waiting for it share it

        def load() -> None:
            with self._one_load:
                try:
                    model = self._load(location)
                except BaseException as err:  # noqa: BLE001 (the waiting requests raise it)
                    with self._lock:
                        self._loading.pop(location, None)
                    future.set_exception(err)
                    return
            with self._lock:  # kept before the waiters hear of it: a request that comes now finds it loaded
                self._loading.pop(location, None)
                self.loaded[location] = model
                self._evict(keep=location)
            future.set_result(model)

        threading.Thread(target=load, daemon=True, name="model-load").start()
        return future

    def _load(self, location: str) -> LoadedModel:
        from core.speech.inference import Transcriber  # torch: imported where a model loads

        try:
            return LoadedModel(location, Transcriber(location, self.workspace), self.settings)
        except StudioError as err:
            raise ApiError(400, str(err), "model", "model_not_loadable") from None
        except Exception as err:  # noqa: BLE001 (the Hub's and the loaders' own errors: the request is told why)
            why = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
            message = f"cannot load model '{location}' ({type(err).__name__}: {why}); try again, or choose another"
            raise ApiError(400, message, "model", "model_not_loadable") from None

    def _evict(self, keep: str) -> None:
        """Keep MODELS_KEPT: the served one, `keep` and the most recently used; an evicted model in use closes
        when its last request is done. Called with the lock held."""
        others = [name for name in self.loaded if name not in (self.served, keep)]
        for name in others[: max(0, len(self.loaded) - MODELS_KEPT)]:
            model = self.loaded.pop(name)
            model.evicted = True
            if model.users == 0:
                model.loop.close(timeout=0)

    def loaded_ids(self) -> list[str]:
        """The loaded models as /v1/models names them (the served one first): never a path."""
        with self._lock:
            locations = list(self.loaded)
        others = [model_id(location, self.workspace) or Path(location).name for location in locations]
        return [self.served_id] + [i for i, location in zip(others, locations) if location != self.served]

    def windows_waiting(self) -> int:
        with self._lock:
            models = list(self.loaded.values())
        return sum(m.loop.depth() for m in models)

    def close(self) -> None:
        with self._lock:
            models = list(self.loaded.values())
        for model in models:
            model.loop.close(timeout=0)  # its requests were answered; a batch still running is thrown away
