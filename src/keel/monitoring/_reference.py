"""The reference of a model: the profile of the training data its run logged.

``run.log_dataset(frame)`` stores a drift reference in the dataset's profile (see
``keel.tracking.datasets``); a registered version knows its run, so
``reference_profile("models:/churn/3")`` (or ``models:/churn@champion``, or
``runs:/<run_id>/model``) finds that profile and returns it as a ``ReferenceProfile``.
With several datasets in the context, the last one logged wins.
"""

from __future__ import annotations

from keel.errors import InvalidInput, NotFound
from keel.monitoring._profile import ReferenceProfile

__all__ = ["reference_profile"]


def reference_profile(model_uri: str, *, context: str = "training") -> ReferenceProfile:
    """Return the ``ReferenceProfile`` of the ``context`` dataset of a model version or run."""
    from keel.registry.uris import ModelRef, parse_model_uri
    from keel.tracking.api import get_run_inputs

    if not isinstance(context, str) or not context:
        raise InvalidInput("context must be a non-empty dataset context such as 'training'")
    ref = parse_model_uri(model_uri)
    if isinstance(ref, ModelRef):
        from keel.registry.api import resolve_model_version

        version = resolve_model_version(model_uri)
        if version.run_id is None:
            raise NotFound(
                f"{model_uri!r} was registered without a run, so it has no training dataset"
            )
        run_id = version.run_id
    else:
        run_id = ref.run_id
    inputs = [i for i in get_run_inputs(run_id) if i.context == context]
    stored = [i for i in inputs if isinstance(i.profile, dict) and "reference" in i.profile]
    if not stored:
        logged = (
            f"{len(inputs)} {context} dataset(s) without a drift profile"
            if inputs
            else (f"no {context} dataset")
        )
        raise NotFound(
            f"run {run_id} logged {logged}; log the training frame with "
            f"run.log_dataset(frame, context={context!r}) to give {model_uri!r} a reference"
        )
    return ReferenceProfile.from_dict(stored[-1].profile["reference"])
