import pytest

# Fixtures are data, not tests: the tiny course's checks (tests/fixtures/tiny_course/checks) are
# run by the grader's runner on a submission, never collected by this suite.
collect_ignore_glob = ["fixtures/*"]


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


# The hidden-data seed the suite grades with: fixed, so runs agree, and independent of the
# developer's real course secret (grader.secret), which the tests never read or create.
TEST_HIDDEN_SEED = "20261125"


@pytest.fixture(autouse=True, scope="session")
def _course_secret(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OBJLOC_HIDDEN_SEED", TEST_HIDDEN_SEED)
        patch.setenv("OBJLOC_SECRET_FILE", str(tmp_path_factory.mktemp("secret") / "hidden-seed"))
        yield
