"""e-CPS fixtures: simulated phones (``psc-ecps``) with their own state directory."""

from __future__ import annotations

import pytest

from ..ecps_support import Phone


@pytest.fixture
def phone_factory(tmp_path, idp):
    return lambda name: Phone(tmp_path / name, idp.ca)
