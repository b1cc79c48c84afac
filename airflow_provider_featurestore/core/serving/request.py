"""The body of `POST /get-online-features`, as one pydantic model, and its errors as one line.

Strict types (a string is not a list, 1 is not true), no field beyond the three, at most
`max_entities` entities (counted before any entity is validated). A problem becomes BadInput
naming the field (`features[1]: expected a feature ref string ...`, `entities: is required:
...`) through `request_errors.validation_line`, the status page's mechanism too. JSON is parsed
by the standard library first, so a body that is not JSON, or nests too deeply, is told so.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.request_errors import describe, validation_line

MAX_ENTITIES = 10_000  # entities per request
FIELDS = ("features", "entities", "event_timestamps")
EXPECTED = {
    "features": "a list of feature refs ('feature_set:feature')",
    "features[]": "a feature ref string ('feature_set:feature')",
    "entities": "a list of objects of index column values",
    "entities[]": "an object of index column values",
    "event_timestamps": "true or false",
}


class LookupBody(BaseModel):
    """`{"features": [...], "entities": [{...}, ...], "event_timestamps": false}`."""

    model_config = ConfigDict(strict=True, extra="forbid")

    features: list[str]
    entities: list[dict[str, Any]]
    event_timestamps: bool = False

    @field_validator("entities", mode="before")
    @classmethod
    def _at_most(cls, value: Any, info: ValidationInfo) -> Any:
        limit = (info.context or {}).get("max_entities", MAX_ENTITIES)
        if isinstance(value, list) and len(value) > limit:
            raise ValueError(f"{len(value):,} given; at most {limit:,} per request")
        return value


def parse_body(body: bytes, max_entities: int = MAX_ENTITIES) -> LookupBody:
    """The request body as a LookupBody; BadInput naming the field at fault."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"body: not JSON: {exc}") from None
    except RecursionError:
        raise BadInput("body: JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise BadInput(f"body: expected a JSON object with {', '.join(FIELDS)}, got {describe(document)}")
    try:
        return LookupBody.model_validate(document, context={"max_entities": max_entities})
    except ValidationError as exc:
        raise BadInput(validation_line(exc.errors(), expected=EXPECTED, fields=FIELDS, root="body")) from None
