"""MLflow's scoring formats for ``POST /invocations``, read into one DataFrame.

JSON bodies hold exactly one of ``dataframe_split`` (``{"columns", "data"}``, optional
``index``), ``dataframe_records`` (a list of ``{column: value}``), ``instances`` (a list of
records or of rows) or ``inputs`` (a dict of columns, or a list as for ``instances``), as
``mlflow models serve`` accepts them; a ``text/csv`` body is read with a header row. Rows
given as lists take the model's column order from the signature when the frame is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

from .codec_json import parse_json

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMATS", "read_invocation"]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def read_invocation(body: bytes, content_type: str) -> pd.DataFrame:
    """Return the DataFrame an ``/invocations`` body describes, or raise ``InvalidInput``."""
    import pandas as pd

    if content_type.split(";", maxsplit=1)[0].strip().lower() == "text/csv":
        import io

        try:
            return pd.read_csv(io.BytesIO(body))
        except (ValueError, pd.errors.ParserError) as exc:
            raise InvalidInput(f"cannot read the CSV body: {exc}") from None
    doc = parse_json(body)
    if not isinstance(doc, Mapping):
        raise InvalidInput(f"the body must be a JSON object with one of {list(FORMATS)}")
    present = [key for key in FORMATS if key in doc]
    if len(present) != 1:
        raise InvalidInput(f"the body must hold exactly one of {list(FORMATS)}, got {present}")
    key = present[0]
    try:
        return _frame(key, doc[key])
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"cannot read {key!r} as a table: {exc}") from None


def _frame(key: str, value: Any) -> pd.DataFrame:
    import pandas as pd

    if key == "dataframe_split":
        if not isinstance(value, Mapping) or not isinstance(value.get("data"), list):
            raise InvalidInput("'dataframe_split' needs 'data' (a list of rows) and 'columns'")
        return pd.DataFrame(value["data"], columns=value.get("columns"), index=value.get("index"))
    if key == "dataframe_records":
        if not isinstance(value, list) or not all(isinstance(r, Mapping) for r in value):
            raise InvalidInput("'dataframe_records' must be a list of {column: value} objects")
        return pd.DataFrame.from_records(value)
    if key == "inputs" and isinstance(value, Mapping):
        return pd.DataFrame(dict(value))
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{key!r} must be a non-empty list of records or rows")
    if all(isinstance(r, Mapping) for r in value):
        return pd.DataFrame.from_records(value)
    return pd.DataFrame(value)  # rows: the signature's column order is applied later
