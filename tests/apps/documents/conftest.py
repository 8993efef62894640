"""Fixtures shared by the documents tests: the clock at ``START`` and the tenant's scope."""

from __future__ import annotations

import pytest

from tests.apps.documents.support import START, scope_of
from turnus.core.clock import FrozenClock, use_clock


@pytest.fixture
def clock():
    frozen = FrozenClock(START)
    with use_clock(frozen):
        yield frozen


@pytest.fixture
def scope(tenant):
    return scope_of(tenant)
