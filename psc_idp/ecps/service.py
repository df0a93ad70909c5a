"""e-CPS logic in one import for the pages, the API and the console: enrolment
(``enrolment``), login by number matching (``login_requests``), messages signed by the
device key (``signed``) and the abuse limits (``limits``). Views and the API are thin
layers over these functions."""

from __future__ import annotations

from .enrolment import (  # noqa: F401
    CARD_ONLY,
    MAX_DEVICES,
    activate,
    codes_offered,
    devices_of,
    qr_text,
    revoke_device,
    start_code_activation,
    start_qr_activation,
)
from .login_requests import (  # noqa: F401
    BROWSER_STATUSES,
    browser_status,
    cancel,
    decide,
    pending_for,
    settled_status,
    start_login,
    use,
)
from .signed import AUTH_TYP, DECISION_TYP, EcpsError, authenticate_device  # noqa: F401
