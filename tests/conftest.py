import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--runslow", action="store_true", help="also run tests marked slow (full training)"
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: full training; run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
