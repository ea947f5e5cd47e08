"""Identifier validation: every id is checked before it touches an object key or a path.

The regexes are the identifier contract (docs/architecture.md); errors say them in words. ``re.fullmatch`` is used so that a trailing
newline or any character outside the class is rejected (``$`` alone would accept "abc\\n").
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

CAMPAIGN_ID_PATTERN = r"[a-z0-9][a-z0-9-]{2,62}"
CRYPTO_PATTERN = r"[A-Z0-9]{2,20}"
FAMILY_PATTERN = r"[a-z0-9_]{1,32}"

_PATTERNS = {
    "campaign_id": CAMPAIGN_ID_PATTERN,
    "crypto": CRYPTO_PATTERN,
    "family": FAMILY_PATTERN,
}
# Each pattern said in words, for the person who typed the id.
RULES = {
    "campaign_id": "3 to 63 characters: lowercase letters, digits and '-', starting with a letter or a digit "
                   "(e.g. defi-20261123-031500)",
    "crypto": "2 to 20 uppercase letters or digits (e.g. SOLUSDC)",
    "family": "1 to 32 lowercase letters, digits or '_' (e.g. hgb)",
}


def _check(kind: str, value: object) -> str:
    pattern = _PATTERNS[kind]
    if not isinstance(value, str) or re.fullmatch(pattern, value) is None:
        raise ValueError(f"{kind} {value!r} is invalid: expected {RULES[kind]}")
    return value


def validate_campaign_id(value: object) -> str:
    return _check("campaign_id", value)


def validate_crypto(value: object) -> str:
    return _check("crypto", value)


def validate_family(value: object) -> str:
    return _check("family", value)


def validate_fold(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 99:
        raise ValueError(f"fold {value!r} is invalid: expected an integer from 0 to 99")
    return value


CampaignId = Annotated[str, AfterValidator(validate_campaign_id)]
Crypto = Annotated[str, AfterValidator(validate_crypto)]
Family = Annotated[str, AfterValidator(validate_family)]
