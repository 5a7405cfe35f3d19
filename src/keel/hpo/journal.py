"""Optuna studies on Keel's store: ``create_study``, ``load_study``, ``list_studies``.

Optuna's ``JournalStorage`` keeps a study as a replayed log of operations behind a
two-method backend (``append_logs``, ``read_logs``); :class:`KeelJournalBackend` is that
backend on a ``StudyStore``, one journal per Keel study. So a study lives in the metadata
database (SQLite, PostgreSQL) or behind a Keel server, with no tables of Optuna's own
(its ``RDBStorage`` brings an ``alembic_version`` table that would collide with Keel's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from keel.errors import AlreadyExists, Conflict, InvalidInput, MissingDependency, NotFound
from keel.hpo.store import MAX_READ, StudyInfo, StudyStore, check_study_name

try:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import BaseJournalBackend
except ImportError as exc:  # pragma: no cover - the hpo extra is part of dev
    raise MissingDependency(
        "hyperparameter search needs optuna; install it with: pip install 'keel-mlops[hpo]'"
    ) from exc

if TYPE_CHECKING:
    from keel.stores import Stores

__all__ = [
    "DIRECTIONS",
    "KeelJournalBackend",
    "check_directions",
    "create_study",
    "is_keel_study",
    "list_studies",
    "load_study",
]

DIRECTIONS = ("minimize", "maximize")


class KeelJournalBackend(BaseJournalBackend):
    """An Optuna journal backend on one study of a Keel ``StudyStore``."""

    def __init__(self, store: StudyStore, study: str) -> None:
        self.store = store
        self.study = check_study_name(study)
        # Optuna reads the journal right after each write, from where its last read ended:
        # an append reads from there in its own transaction, and that read is handed over.
        self._next: int | None = None
        self._prefetched: tuple[int, list[dict[str, Any]]] | None = None

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        """Return every entry from ``log_number_from`` on (read in pages)."""
        logs: list[dict[str, Any]] = []
        start = log_number_from
        if self._prefetched is not None and self._prefetched[0] == start:
            logs = self._prefetched[1]
            start += len(logs)
            done = len(logs) < MAX_READ
        else:
            done = False
        self._prefetched = None
        while not done:
            page = self.store.read_logs(self.study, start)
            logs.extend(page)
            start += len(page)
            done = len(page) < MAX_READ
        self._next = start
        return logs

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Append ``logs`` to the study's journal, numbered after the last entry."""
        if self._next is None:
            self.store.append_logs(self.study, logs)
            return
        _, after = self.store.append_and_read(self.study, logs, self._next)
        self._prefetched = (self._next, after)


def check_directions(direction: Any, directions: Any) -> list[str] | None:
    """Return the study's directions as given (None if neither is), or ``InvalidInput``."""
    if direction is not None and directions is not None:
        raise InvalidInput("give direction or directions, not both")
    if direction is None and directions is None:
        return None
    wanted = [direction] if direction is not None else directions
    if isinstance(wanted, str) or not isinstance(wanted, Sequence) or not wanted:
        raise InvalidInput("directions must be a non-empty list of 'minimize' or 'maximize'")
    out = []
    for d in wanted:
        name = d.name.lower() if isinstance(d, optuna.study.StudyDirection) else d
        if name not in DIRECTIONS:
            raise InvalidInput(f"invalid direction {d!r:.100}: use 'minimize' or 'maximize'")
        out.append(name)
    return out


def _stores() -> Stores:
    from keel.stores import current_stores

    return current_stores()


def _storage(store: StudyStore, name: str) -> JournalStorage:
    return JournalStorage(KeelJournalBackend(store, name))


def is_keel_study(study: Any) -> bool:
    """Return whether ``study`` is an Optuna study stored by Keel (so workers can load it)."""
    storage = getattr(study, "_storage", None)
    for _ in range(3):  # Optuna may wrap a storage (a cache) around the journal storage
        if isinstance(storage, KeelJournalBackend):
            return True
        storage = getattr(storage, "_backend", None)
    return False


def create_study(
    name: str,
    *,
    direction: str | None = None,
    directions: Sequence[str] | None = None,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    load_if_exists: bool = True,
) -> optuna.Study:
    """Return an Optuna study stored in Keel's store, created (default: minimize) or loaded.

    An existing study is loaded when ``load_if_exists`` (else ``AlreadyExists``); asking it
    for other directions than it has is a ``Conflict``.
    """
    check_study_name(name)
    wanted = check_directions(direction, directions)
    if not isinstance(load_if_exists, bool):
        raise InvalidInput("load_if_exists must be True or False")
    store = _stores().hpo
    exists = _exists(store, name)
    if exists and not load_if_exists:
        raise AlreadyExists(f"study {name!r} already exists; load it with keel.load_study")
    if exists:
        study = load_study(name, sampler=sampler, pruner=pruner)
        have = [d.name.lower() for d in study.directions]
        if wanted is not None and wanted != have:
            raise Conflict(
                f"study {name!r} was created to {', '.join(have)}, not {', '.join(wanted)}"
            )
        return study
    return optuna.create_study(
        storage=_storage(store, name),
        study_name=name,
        directions=wanted or ["minimize"],
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,  # another process may create it at the same moment
    )


def _exists(store: StudyStore, name: str) -> bool:
    try:
        store.get_study(name)
    except NotFound:
        return False
    return True


def load_study(
    name: str,
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Return the study called ``name`` from Keel's store; ``NotFound`` if there is none."""
    check_study_name(name)
    store = _stores().hpo
    store.get_study(name)  # NotFound, naming the study
    storage = _storage(store, name)
    try:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:  # a journal with no CREATE_STUDY for this name
        raise NotFound(f"study {name!r} has a journal but was never created") from None


def list_studies() -> list[StudyInfo]:
    """Return every study in Keel's store, by name."""
    return _stores().hpo.list_studies()
