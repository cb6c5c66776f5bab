"""Point the contract suite at a deployment, or start the monolith as a black box.

    STRANGLER_CONTRACT_URL=http://127.0.0.1:8000 pytest tests/contract     # any deployment
    pytest tests/contract --contract-url http://127.0.0.1:8000               # the same
    pytest tests/contract                                                    # starts the monolith

Against a given URL, staff-only tests need STRANGLER_CONTRACT_STAFF_EMAIL and
STRANGLER_CONTRACT_STAFF_PASSWORD, and are skipped (saying so) without them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .helpers import Api, Customer, login, new_customer
from .server import Deployment, monolith, serving

URL_ENV = "STRANGLER_CONTRACT_URL"
STAFF_EMAIL_ENV = "STRANGLER_CONTRACT_STAFF_EMAIL"
STAFF_PASSWORD_ENV = "STRANGLER_CONTRACT_STAFF_PASSWORD"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--contract-url",
        default=None,
        help=f"Base URL the contract suite tests (default: ${URL_ENV}, else a monolith it starts).",
    )


# Package scope: in a whole-suite run the server it starts stops as soon as this suite is done.
@pytest.fixture(scope="package")
def deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    """The deployment under test: the given URL, or a monolith started for this suite."""
    # getoption's default covers runs where this conftest was not an initial one (`pytest`
    # from the root): the option is then unknown, and the environment variable is the way in.
    url = request.config.getoption("contract_url", default=None) or os.environ.get(URL_ENV)
    if url:
        yield Deployment(
            base_url=url.rstrip("/"),
            staff_email=os.environ.get(STAFF_EMAIL_ENV) or None,
            staff_password=os.environ.get(STAFF_PASSWORD_ENV) or None,
        )
        return
    with monolith(os.environ.get("DATABASE_URL"), os.environ.get("BROKER_URL")) as started:
        yield started


@pytest.fixture(scope="package")
def api(deployment: Deployment) -> Api:
    """An anonymous client of the deployment."""
    return Api(deployment.base_url)


@pytest.fixture
def make_customer(api: Api) -> Callable[..., Customer]:
    """Register and log in a fresh user with a unique email: make_customer(full_name=...)."""
    return lambda **extra: new_customer(api, **extra)


@pytest.fixture
def customer(make_customer) -> Customer:
    return make_customer()


@pytest.fixture
def stranger(make_customer) -> Customer:
    """Another user, who must never see the customer's orders or payments."""
    return make_customer()


@pytest.fixture(scope="package")
def staff(deployment: Deployment, api: Api) -> Api:
    """A client logged in as a staff account; skips when the deployment gave none."""
    if not (deployment.staff_email and deployment.staff_password):
        pytest.skip(
            f"staff-only contract: set {STAFF_EMAIL_ENV} and {STAFF_PASSWORD_ENV} "
            "to a staff account of the deployment under test"
        )
    return api.with_token(login(api, deployment.staff_email, deployment.staff_password))


@pytest.fixture(scope="package")
def multiprocess_api(deployment: Deployment) -> Iterator[Api]:
    """A client of a deployment served by several processes.

    When this suite started the monolith, a second server with two worker processes on the same
    database; otherwise the given deployment itself (however it is served).
    """
    if deployment.server_env is None:
        yield Api(deployment.base_url)
        return
    with (
        tempfile.TemporaryDirectory(prefix="strangler-contract-") as workdir,
        serving(deployment.server_env, Path(workdir), workers=2) as base_url,
    ):
        yield Api(base_url)
