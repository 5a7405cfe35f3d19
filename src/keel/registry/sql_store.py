"""The registry store on SQLite or PostgreSQL (one implementation, SQLAlchemy Core)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy import exc as sa_exc

from keel.errors import AlreadyExists, Conflict, NotFound
from keel.governance.chain import Entry, append
from keel.registry.card import card_title
from keel.registry.entities import ModelVersion, RegisteredModel
from keel.registry.sql_aliases import SqlAliases
from keel.registry.store import RegistryStore
from keel.store import schema as t
from keel.store.clock import now_ms
from keel.store.database import Database

__all__ = ["SqlRegistryStore"]

_VERSION_FIELDS = (
    "run_id",
    "source",
    "artifact_digest",
    "flavor",
    "signature",
    "input_example",
    "description",
    "metrics",
    "model_card",
    "created_by",
)

# What a version's audit entry records (signature, example and card are long; the digest
# pins the artifact).
_AUDITED_VERSION_FIELDS = ("run_id", "source", "artifact_digest", "flavor", "created_by")


# Hot statements built once: SQLAlchemy then reuses their cache keys and compiled forms
# (a statement built anew on every call costs more in Python than running it).
_rm, _mv = t.registered_models, t.model_versions
_MODEL_EXISTS = select(_rm.c.name).where(_rm.c.name == bindparam("b_name"))
_VERSION_EXISTS = select(_mv.c.version).where(
    _mv.c.name == bindparam("b_name"), _mv.c.version == bindparam("b_version")
)
_BUMP_VERSION = (
    update(_rm)
    .where(_rm.c.name == bindparam("b_name"))
    .values(last_version=_rm.c.last_version + 1, updated_at=bindparam("b_now"))
    .returning(_rm.c.last_version)
)
_INSERT_VERSION = _mv.insert()


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class SqlRegistryStore(SqlAliases, RegistryStore):
    """The model registry on a SQL metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- registered models ---------------------------------------------------------------
    def create_registered_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        try:
            with self.db.write() as conn:
                self._insert_model(conn, name, description)
                if tags:
                    conn.execute(
                        t.registered_model_tags.insert(),
                        [{"name": name, "key": k, "value": v} for k, v in tags.items()],
                    )
                change = {"description": description, "tags": dict(tags or {})}
                append(conn, [Entry("model.create", "model", name, change)])
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"a registered model named {name!r} already exists") from None
        return self.get_registered_model(name)

    @staticmethod
    def _insert_model(
        conn: Connection, name: str, description: str | None, *, last_version: int = 0
    ) -> None:
        now = now_ms()
        conn.execute(
            t.registered_models.insert().values(
                name=name,
                description=description,
                created_at=now,
                updated_at=now,
                last_version=last_version,
            )
        )

    def _model_from(self, conn: Connection, row: Any) -> RegisteredModel:
        aliases = conn.execute(
            select(t.model_aliases.c.alias, t.model_aliases.c.version)
            .where(t.model_aliases.c.name == row.name)
            .order_by(t.model_aliases.c.alias)
        ).all()
        tags = conn.execute(
            select(t.registered_model_tags.c.key, t.registered_model_tags.c.value).where(
                t.registered_model_tags.c.name == row.name
            )
        ).all()
        return RegisteredModel(
            name=row.name,
            description=row.description,
            created_at=row.created_at,
            updated_at=row.updated_at,
            latest_version=row.last_version,
            aliases={alias: version for alias, version in aliases},
            tags={key: value for key, value in tags},
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            row = conn.execute(
                select(t.registered_models).where(t.registered_models.c.name == name)
            ).first()
            if row is None:
                raise NotFound(f"no registered model named {name!r}")
            return self._model_from(conn, row)

    def list_registered_models(self) -> list[RegisteredModel]:
        with self.db.read() as conn:
            rows = conn.execute(select(t.registered_models).order_by(t.registered_models.c.name))
            return [self._model_from(conn, row) for row in rows.all()]

    def update_registered_model(self, name: str, *, description: str | None) -> RegisteredModel:
        with self.db.write() as conn:
            done = conn.execute(
                update(t.registered_models)
                .where(t.registered_models.c.name == name)
                .values(description=description, updated_at=now_ms())
            )
            if done.rowcount == 0:
                raise NotFound(f"no registered model named {name!r}")
            append(conn, [Entry("model.update", "model", name, {"description": description})])
        return self.get_registered_model(name)

    def delete_registered_model(self, name: str) -> None:
        with self.db.write() as conn:
            self._require_model(conn, name)
            conn.execute(t.model_aliases.delete().where(t.model_aliases.c.name == name))
            conn.execute(t.model_version_tags.delete().where(t.model_version_tags.c.name == name))
            conn.execute(t.model_versions.delete().where(t.model_versions.c.name == name))
            conn.execute(
                t.registered_model_tags.delete().where(t.registered_model_tags.c.name == name)
            )
            conn.execute(t.registered_models.delete().where(t.registered_models.c.name == name))
            # Roles on a model are bound by its name: a later model of the same name must
            # not inherit them.
            rb = t.role_bindings
            conn.execute(rb.delete().where(rb.c.object_type == "model", rb.c.object_id == name))
            append(conn, [Entry("model.delete", "model", name, {})])

    @staticmethod
    def _require_model(conn: Connection, name: str) -> None:
        found = conn.execute(_MODEL_EXISTS, {"b_name": name}).first()
        if found is None:
            raise NotFound(f"no registered model named {name!r}")

    # -- versions ------------------------------------------------------------------------
    def create_model_version(
        self, name: str, fields: Mapping[str, Any], *, create_model: bool = True
    ) -> ModelVersion:
        now = now_ms()
        values = {key: fields.get(key) for key in _VERSION_FIELDS}
        for key in ("signature", "input_example", "metrics"):
            if values[key] is not None:
                values[key] = json.dumps(values[key], allow_nan=True)
        for attempt in range(2):
            try:
                version = self._insert_version(
                    values=values, name=name, now=now, create_model=create_model
                )
                break
            except sa_exc.IntegrityError:
                # Two first registrations of a new model raced to create it: the loser
                # retries once, now that the model exists.
                if attempt:
                    raise Conflict(
                        f"could not register a version of {name!r}: concurrent changes"
                    ) from None
        # Built from what was inserted: a new version has no aliases or tags yet.
        return ModelVersion(
            name=name,
            version=version,
            source=fields["source"],
            run_id=fields.get("run_id"),
            artifact_digest=fields["artifact_digest"],
            flavor=fields["flavor"],
            signature=fields.get("signature"),
            input_example=fields.get("input_example"),
            description=fields.get("description"),
            metrics=dict(fields.get("metrics") or {}),
            status="ready",
            created_at=now,
            updated_at=now,
            created_by=fields["created_by"],
        )

    def _insert_version(
        self, *, values: dict[str, Any], name: str, now: int, create_model: bool
    ) -> int:
        with self.db.write() as conn:
            # The counter row serialises concurrent registrations of one model, and its
            # absence means the model does not exist yet.
            version = conn.execute(_BUMP_VERSION, {"b_name": name, "b_now": now}).scalar()
            entries = []
            if version is None:
                if not create_model:
                    raise NotFound(f"no registered model named {name!r}")
                self._insert_model(conn, name, None, last_version=1)
                version = 1
                entries.append(Entry("model.create", "model", name, {"description": None}))
            row = {"name": name, "version": version, "status": "ready", **values}
            conn.execute(_INSERT_VERSION, {**row, "created_at": now, "updated_at": now})
            change = {k: values[k] for k in _AUDITED_VERSION_FIELDS}
            entries.append(Entry("version.create", "version", f"{name}/{version}", change))
            append(conn, entries)
        return version

    def _versions_from(self, conn: Connection, rows: list[Any]) -> list[ModelVersion]:
        if not rows:
            return []
        name = rows[0].name
        aliases: dict[int, list[str]] = {}
        for alias, version in conn.execute(
            select(t.model_aliases.c.alias, t.model_aliases.c.version)
            .where(t.model_aliases.c.name == name)
            .order_by(t.model_aliases.c.alias)
        ):
            aliases.setdefault(version, []).append(alias)
        tags: dict[int, dict[str, str]] = {}
        for version, key, value in conn.execute(
            select(
                t.model_version_tags.c.version,
                t.model_version_tags.c.key,
                t.model_version_tags.c.value,
            ).where(t.model_version_tags.c.name == name)
        ):
            tags.setdefault(version, {})[key] = value
        return [
            ModelVersion(
                name=r.name,
                version=r.version,
                source=r.source,
                run_id=r.run_id,
                artifact_digest=r.artifact_digest,
                flavor=r.flavor,
                signature=_loads(r.signature),
                input_example=_loads(r.input_example),
                description=r.description,
                metrics=_loads(r.metrics) or {},
                status=r.status,
                created_at=r.created_at,
                updated_at=r.updated_at,
                created_by=r.created_by,
                aliases=tuple(aliases.get(r.version, ())),
                tags=tags.get(r.version, {}),
            )
            for r in rows
        ]

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        with self.db.read() as conn:
            row = conn.execute(
                select(t.model_versions).where(
                    t.model_versions.c.name == name, t.model_versions.c.version == version
                )
            ).first()
            if row is None:
                self._require_model(conn, name)
                raise NotFound(f"model {name!r} has no version {version}")
            return self._versions_from(conn, [row])[0]

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        with self.db.read() as conn:
            self._require_model(conn, name)
            rows = conn.execute(
                select(t.model_versions)
                .where(t.model_versions.c.name == name)
                .order_by(t.model_versions.c.version.desc())
            ).all()
            return self._versions_from(conn, rows)

    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
    ) -> ModelVersion:
        values: dict[str, Any] = {"updated_at": now_ms()}
        if description is not None:
            values["description"] = description
        with self.db.write() as conn:
            done = conn.execute(
                update(t.model_versions)
                .where(t.model_versions.c.name == name, t.model_versions.c.version == version)
                .values(**values)
            )
            if done.rowcount == 0:
                raise NotFound(f"model {name!r} has no version {version}")
            change = {"description": description}
            append(conn, [Entry("version.update", "version", f"{name}/{version}", change)])
        return self.get_model_version(name, version)

    def set_model_card(self, name: str, version: int, card: str) -> None:
        with self.db.write() as conn:
            done = conn.execute(
                update(t.model_versions)
                .where(t.model_versions.c.name == name, t.model_versions.c.version == version)
                .values(model_card=card)
            )
            if done.rowcount == 0:
                raise NotFound(f"model {name!r} has no version {version}")
            change = {"card": card, "length": len(card)}
            append(conn, [Entry("version.card", "version", f"{name}/{version}", change)])

    def get_model_card(self, name: str, version: int) -> str:
        with self.db.read() as conn:
            card = conn.execute(
                select(t.model_versions.c.model_card).where(
                    t.model_versions.c.name == name, t.model_versions.c.version == version
                )
            ).first()
        if card is None:
            raise NotFound(f"model {name!r} has no version {version}")
        return card_title(name, version) + (card[0] or "")

    # -- tags ----------------------------------------------------------------------------
    def set_model_tag(self, name: str, key: str, value: str) -> None:
        with self.db.write() as conn:
            self._require_model(conn, name)
            self.db.upsert(
                conn,
                t.registered_model_tags,
                [{"name": name, "key": key, "value": value}],
                keys=["name", "key"],
                update=["value"],
            )
            append(conn, [Entry("model.tag", "model", name, {key: value})])

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        with self.db.write() as conn:
            self._require_version(conn, name, version)
            self.db.upsert(
                conn,
                t.model_version_tags,
                [{"name": name, "version": version, "key": key, "value": value}],
                keys=["name", "version", "key"],
                update=["value"],
            )
            object_id = f"{name}/{version}"
            append(conn, [Entry("version.tag", "version", object_id, {key: value})])

    def _require_version(self, conn: Connection, name: str, version: int) -> None:
        found = conn.execute(_VERSION_EXISTS, {"b_name": name, "b_version": version}).first()
        if found is None:
            self._require_model(conn, name)
            raise NotFound(f"model {name!r} has no version {version}")
