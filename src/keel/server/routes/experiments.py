"""REST routes for experiments under /api/v1: one endpoint per ``TrackingStore`` method."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from keel.errors import NotFound
from keel.governance.auth import Role
from keel.server.auth import experiment_in_path, require
from keel.server.deps import get_stores
from keel.server.routes.runs import LimitedBodyRoute
from keel.server.schemas.tracking import ExperimentBody, clean_tags
from keel.stores import Stores
from keel.tracking.validation import check_id, check_name

router = APIRouter(tags=["experiments"], route_class=LimitedBodyRoute)


@router.post("/experiments", dependencies=[require(Role.EDITOR)])
def create_experiment(body: ExperimentBody, stores: Stores = Depends(get_stores)) -> Any:
    """Return the new experiment; 409 ``ALREADY_EXISTS`` if the name is taken."""
    experiment = stores.tracking.create_experiment(
        check_name("experiment", body.name),
        artifact_location=body.artifact_location,
        description=body.description,
        tags=clean_tags(body.tags),
    )
    return experiment.to_dict()


@router.get("/experiments")
def list_experiments(
    include_deleted: bool = Query(default=False), stores: Stores = Depends(get_stores)
) -> Any:
    """Return ``{"experiments": [...]}``, oldest first."""
    found = stores.tracking.list_experiments(include_deleted=include_deleted)
    return {"experiments": [e.to_dict() for e in found]}


@router.get("/experiments/by-name")
def get_experiment_by_name(
    name: str = Query(max_length=1024), stores: Stores = Depends(get_stores)
) -> Any:
    """Return the experiment with this name; 404 ``NOT_FOUND`` when there is none."""
    clean = check_name("experiment", name)
    found = stores.tracking.get_experiment_by_name(clean)
    if found is None:
        raise NotFound(f"no experiment named {clean!r}")
    return found.to_dict()


@router.get("/experiments/{experiment_id}")
def get_experiment(experiment_id: str, stores: Stores = Depends(get_stores)) -> Any:
    """Return the experiment with this id; 404 when there is none."""
    return stores.tracking.get_experiment(check_id("experiment", experiment_id)).to_dict()


@router.get("/experiments/{experiment_id}/keys")
def get_experiment_keys(experiment_id: str, stores: Stores = Depends(get_stores)) -> Any:
    """Return ``{"metrics", "params", "tags"}``: the distinct keys of the experiment's runs."""
    return stores.tracking.get_experiment_keys(check_id("experiment", experiment_id)).to_dict()


@router.delete(
    "/experiments/{experiment_id}",
    status_code=204,
    dependencies=[require(Role.EDITOR, on=experiment_in_path)],
)
def delete_experiment(experiment_id: str, stores: Stores = Depends(get_stores)) -> Response:
    """Return 204 after marking the experiment and its runs deleted."""
    stores.tracking.delete_experiment(check_id("experiment", experiment_id))
    return Response(status_code=204)
