"""Property-based fuzzing of every operation in the project's own OpenAPI schema.

The schema is generated in-process from the code, so a new endpoint is fuzzed without
touching this file. Each operation gets a bounded, deterministic set of examples, sent
through the WSGI application with a real Bearer token, and every response must be no 5xx,
a documented status code, a documented content type and a body matching the schema. About
half of the cases carry one hostile value (tests/fuzzing.py: lone surrogates, numbers beyond
every range, impossible dates). The superuser walks every operation deeply; then every
persona — each role, a user in no role, a data scientist who owns nothing — walks every
operation with its own token.
"""

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from registry import services
from tests.conftest import _user
from tests.fuzzing import add_hostile_values

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


schema = schemathesis.openapi.from_dict(_schema())
add_hostile_values(schema)


@pytest.fixture
def wsgi_like_test_client():
    """Calling the WSGI app directly fires request_finished, whose handler closes a connection
    that saw an error; Django's test client detaches it for the duration, and so do we."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_token(wsgi_like_test_client, superuser, credit_version, pipeline):
    """A superuser's token, and a few real objects for path parameters to hit."""
    job = services.job_create(actor=pipeline, namespace="airflow", name="train")
    services.run_create(actor=pipeline, job=job)
    dataset = services.dataset_create(actor=pipeline, namespace="s3://lake", name="events")
    services.dataset_version_create(actor=pipeline, dataset=dataset, version="1")
    _, token = services.api_token_issue(actor=None, user=superuser, name="fuzz")
    return token


# Each request commits on its own, as in production: a refused statement cannot poison the
# examples after it.
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_every_operation_survives_fuzzing(case, fuzz_token):
    case.call_and_validate(
        app=application, headers={"Authorization": f"Bearer {fuzz_token}"}, checks=CHECKS
    )


PERSONAS = {
    "data-scientist": "data-scientist",
    "pipeline": "pipeline",
    "model-validator": "model-validator",
    "risk-officer": "risk-officer",
    "auditor": "auditor",
    "no-role": None,
    "owns-nothing": "data-scientist",
}


@pytest.mark.django_db(transaction=True)
def test_every_operation_survives_fuzzing_by_every_persona(fuzz_token):
    """Every persona's own token on every operation: a few examples each (sampled persona per
    example, derandomized), so the run stays within a couple of minutes."""
    tokens = {}
    for name, role in PERSONAS.items():
        user = _user(f"fuzz-{name}", role)
        _, tokens[name] = services.api_token_issue(actor=None, user=user, name="fuzz")
    names = sorted(tokens)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(), who=st.sampled_from(names))
        @settings(
            max_examples=PERSONA_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            # No shrinking: the first failing example is reported as found, in bounded time.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def walk(case, who):
            case.call_and_validate(
                app=application, headers={"Authorization": f"Bearer {tokens[who]}"}, checks=CHECKS
            )

        try:
            walk()
        except (Exception, BaseExceptionGroup) as exc:  # report every operation's failure
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)


PERSONA_EXAMPLES = 12
