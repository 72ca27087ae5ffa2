"""What the API does when it starts on its own services (not shared ones, as most tests use)."""

from __future__ import annotations

import pytest

from backend.main import create_app

pytestmark = pytest.mark.asyncio


async def test_startup_loads_the_embedding_model_before_the_first_request(app_settings, tmp_path):
    settings = app_settings.model_copy(update={"data_dir": tmp_path})
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        services = app.state.container
        assert services.encoder._model is not None, "the first incident would wait for the model to load"
        dimension = services.encoder.dimension
    assert dimension == 384
