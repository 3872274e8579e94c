"""Settings shared by the whole suite."""

import os

from hypothesis import HealthCheck, settings

# Qt aborts without a display unless told to render offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

settings.register_profile(
    "subtone", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=50
)
settings.load_profile("subtone")


def pytest_addoption(parser):
    parser.addoption(
        "--screenshots",
        metavar="DIR",
        default=None,
        help="where the desktop tests save their screenshots (default: pytest's tmp folder)",
    )
