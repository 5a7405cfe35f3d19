"""Aliases of registered model versions, with their history, on SQL."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, bindparam, select, update

from keel.errors import NotFound
from keel.governance.chain import Entry, append
from keel.registry.entities import AliasChange, ModelVersion
from keel.store import schema as t
from keel.store.clock import now_ms
from keel.store.database import Database

__all__ = ["SqlAliases"]


# Hot statements built once (SQLAlchemy reuses their cache keys and compiled forms).
_ALIAS_VERSION = select(t.model_aliases.c.version).where(
    t.model_aliases.c.name == bindparam("b_name"), t.model_aliases.c.alias == bindparam("b_alias")
)
# The version (a row only if it exists) and where the alias points now, in one read.
_VERSION_AND_ALIAS = select(t.model_versions.c.version, _ALIAS_VERSION.scalar_subquery()).where(
    t.model_versions.c.name == bindparam("b_name"),
    t.model_versions.c.version == bindparam("b_version"),
)
_INSERT_HISTORY = t.model_alias_history.insert()
_TOUCH_MODEL = (
    update(t.registered_models)
    .where(t.registered_models.c.name == bindparam("b_name"))
    .values(updated_at=bindparam("b_now"))
)


class SqlAliases:
    """Alias moves and their history (mixed into ``SqlRegistryStore``)."""

    # Provided by SqlRegistryStore.
    db: Database
    _require_model: Callable[[Connection, str], None]
    _require_version: Callable[[Connection, str, int], None]
    get_model_version: Callable[[str, int], ModelVersion]

    # -- aliases -------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int, *, actor: str) -> AliasChange:
        now = now_ms()
        with self.db.write() as conn:
            params = {"b_name": name, "b_alias": alias, "b_version": version}
            found = conn.execute(_VERSION_AND_ALIAS, params).first()
            if found is None:
                self._require_version(conn, name, version)  # NotFound: which one is missing
                found = conn.execute(_VERSION_AND_ALIAS, params).one()  # created meanwhile
            previous = found[1]
            self.db.upsert(
                conn,
                t.model_aliases,
                [{"name": name, "alias": alias, "version": version}],
                keys=["name", "alias"],
                update=["version"],
            )
            return self._record(conn, name, alias, version, previous, now, actor)

    def delete_alias(self, name: str, alias: str, *, actor: str) -> AliasChange:
        now = now_ms()
        with self.db.write() as conn:
            previous = conn.execute(
                select(t.model_aliases.c.version).where(
                    t.model_aliases.c.name == name, t.model_aliases.c.alias == alias
                )
            ).scalar()
            if previous is None:
                self._require_model(conn, name)
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            conn.execute(
                t.model_aliases.delete().where(
                    t.model_aliases.c.name == name, t.model_aliases.c.alias == alias
                )
            )
            return self._record(conn, name, alias, None, previous, now, actor)

    @staticmethod
    def _record(
        conn: Connection,
        name: str,
        alias: str,
        version: int | None,
        previous: int | None,
        now: int,
        actor: str,
    ) -> AliasChange:
        conn.execute(
            _INSERT_HISTORY,
            {
                "name": name,
                "alias": alias,
                "version": version,
                "previous_version": previous,
                "changed_at": now,
                "changed_by": actor,
            },
        )
        conn.execute(_TOUCH_MODEL, {"b_name": name, "b_now": now})
        action = "alias.delete" if version is None else "alias.set"
        change = {"version": version, "previous_version": previous}
        append(conn, [Entry(action, "alias", f"{name}@{alias}", change)])
        return AliasChange(name, alias, version, previous, now, actor)

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self.db.read() as conn:
            version = conn.execute(
                select(t.model_aliases.c.version).where(
                    t.model_aliases.c.name == name, t.model_aliases.c.alias == alias
                )
            ).scalar()
            if version is None:
                self._require_model(conn, name)
                raise NotFound(f"model {name!r} has no alias {alias!r}")
        return self.get_model_version(name, version)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        h = t.model_alias_history
        query = select(h).where(h.c.name == name).order_by(h.c.id)
        if alias is not None:
            query = query.where(h.c.alias == alias)
        with self.db.read() as conn:
            self._require_model(conn, name)
            return [
                AliasChange(
                    r.name, r.alias, r.version, r.previous_version, r.changed_at, r.changed_by
                )
                for r in conn.execute(query)
            ]
