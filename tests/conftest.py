import pytest

# Fixtures are data, not tests: the tiny course's checks (tests/fixtures/tiny_course/checks) are
# run by the grader's runner on a submission, never collected by this suite.
collect_ignore_glob = ["fixtures/*"]


def pytest_addoption(parser):
    parser.addoption(
        "--runslow", action="store_true", help="also run tests marked slow (full training)"
    )


#: The files that take minutes (the shipped course's audit, the browser's LMS launch, the batch
#: CLI, the end-to-end grading), measured in CI's --durations: run first, so that both xdist
#: workers (a file each, `--dist loadfile`) end together instead of one finishing the longest last.
LONG_FIRST = (
    "tests/test_audit.py",
    "tests/server/test_browser_lti.py",
    "tests/test_batch.py",
    "tests/test_grade.py",
    "tests/test_hidden_seed.py",
    "tests/test_keras_course.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable
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
        patch.setenv("GRADER_HIDDEN_SEED", TEST_HIDDEN_SEED)
        patch.setenv("GRADER_SECRET_FILE", str(tmp_path_factory.mktemp("secret") / "hidden-seed"))
        # the shipped course unless a test names another: a checkout may install several
        patch.setenv("GRADER_ASSIGNMENT", "object_localization")
        yield
