from __future__ import annotations

import pytest

from .servers import TLSMaterial, make_tls_material


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def tls() -> TLSMaterial:
    return make_tls_material()
