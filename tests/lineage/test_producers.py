"""Events shaped as real producers send them (Spark, Airflow, dbt, Flink): stored as given,
only the facets modelgov interprets validated, limits as documented."""

import copy
import gzip
import json
import uuid

import pytest

from lineage.models import Edge, LineageEvent
from registry.models import Feature, Run
from tests.lineage.conftest import dataset, schema_facet

pytestmark = pytest.mark.django_db

SPARK = "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/spark"
AIRFLOW = "https://github.com/apache/airflow/tree/providers-openlineage/1.14.0"
DBT = "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/dbt"
FLINK = "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/flink"
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def _facet(producer, facet_type, **body):
    return {
        "_producer": producer,
        "_schemaURL": f"https://openlineage.io/spec/facets/1-0-0/{facet_type}.json"
        f"#/$defs/{facet_type}",
        **body,
    }


def _attribute(name, expr_id):
    return [
        {
            "class": "org.apache.spark.sql.catalyst.expressions.AttributeReference",
            "num-children": 0,
            "name": name,
            "dataType": "decimal(18,2)",
            "nullable": True,
            "metadata": {},
            "exprId": {
                "product-class": "org.apache.spark.sql.catalyst.expressions.ExprId",
                "id": expr_id,
                "jvmId": "3c1b4f5e-7a3b-4d1e-9c55-0e6f8a2b1d44",
            },
            "qualifier": ["spark_catalog", "sales", "orders"],
        }
    ]


def _expression(depth, expr_id):
    """A nested arithmetic/CASE expression as Spark serialises it: each operator's children
    one level further down (long CASE WHEN chains give real plans their depth)."""
    node = _attribute(f"amount_{expr_id}", expr_id)
    for level in range(depth):
        node = [
            {
                "class": "org.apache.spark.sql.catalyst.expressions.CaseWhen",
                "num-children": 2,
                "branches": {"condition": node, "value": level},
                "elseValue": None,
            }
        ]
    return node


def spark_logical_plan(nodes=300, expression_depth=16):
    """`spark.logicalPlan`: the plan's nodes in pre-order, each with its expressions."""
    plan = []
    for index in range(nodes):
        plan.append(
            {
                "class": "org.apache.spark.sql.catalyst.plans.logical."
                + ("Aggregate" if index % 3 == 0 else "Project" if index % 3 == 1 else "Join"),
                "num-children": 1 if index % 3 != 2 else 2,
                "projectList": [_attribute(f"c{index}_{k}", index * 10 + k) for k in range(4)],
                "condition": _expression(expression_depth if index == 0 else 3, index),
                "hint": {"leftHint": None, "rightHint": None},
            }
        )
    return {"plan": plan}


def spark_event(run_id, event_type="COMPLETE"):
    """A Spark 1.2x CTAS with a join and an aggregate: deep, large logical plan, column
    lineage, symlinks, the Spark-specific run facets."""
    schema = schema_facet(
        {"name": "customer_id", "type": "long"},
        {"name": "total", "type": "decimal(18,2)"},
        {
            "name": "address",
            "type": "struct",
            "fields": [{"name": "city", "type": "string"}, {"name": "zip", "type": "string"}],
        },
    )
    lineage = _facet(
        SPARK,
        "ColumnLineageDatasetFacet",
        fields={
            "total": {
                "inputFields": [
                    {
                        "namespace": "hdfs://warehouse",
                        "name": "/sales/orders",
                        "field": "amount",
                        "transformations": [
                            {"type": "DIRECT", "subtype": "AGGREGATION", "masking": False}
                        ],
                    }
                ]
            }
        },
    )
    return {
        "eventTime": "2026-10-01T08:00:00.123456789Z",
        "eventType": event_type,
        "producer": SPARK,
        "schemaURL": SPEC,
        "run": {
            "runId": str(run_id),
            "facets": {
                "spark.logicalPlan": _facet(SPARK, "LogicalPlanFacet", **spark_logical_plan()),
                "spark_version": _facet(SPARK, "SparkVersionFacet", **{"spark-version": "3.5.1"}),
                "processing_engine": _facet(
                    SPARK,
                    "ProcessingEngineRunFacet",
                    version="3.5.1",
                    name="spark",
                    openlineageAdapterVersion="1.23.0",
                ),
                "spark_properties": _facet(
                    SPARK,
                    "SparkPropertiesFacet",
                    properties={"spark.master": "yarn", "spark.app.name": "daily_totals"},
                ),
            },
        },
        "job": {
            "namespace": "dataproc",
            "name": "daily_totals.execute_create_table_as_select_command.sales_totals",
            "facets": {
                "jobType": _facet(
                    SPARK,
                    "JobTypeJobFacet",
                    processingType="BATCH",
                    integration="SPARK",
                    jobType="SQL_JOB",
                )
            },
        },
        "inputs": [
            dataset(
                "hdfs://warehouse",
                "/sales/orders",
                schema=schema_facet({"name": "amount", "type": "decimal(18,2)"}),
                symlinks=_facet(
                    SPARK,
                    "SymlinksDatasetFacet",
                    identifiers=[
                        {"namespace": "hive://meta", "name": "sales.orders", "type": "TABLE"}
                    ],
                ),
            )
        ],
        "outputs": [
            dataset(
                "hdfs://warehouse",
                "/sales/totals",
                schema=schema,
                columnLineage=lineage,
                lifecycleStateChange=_facet(
                    SPARK, "LifecycleStateChangeDatasetFacet", lifecycleStateChange="CREATE"
                ),
            )
        ],
    }


def airflow_events():
    """A DAG run and its task run (the task's `parent` facet naming the DAG run), with the
    Airflow facets the provider sends."""
    dag_run, task_run = uuid.uuid4(), uuid.uuid4()
    dag = {
        "eventTime": "2026-10-01T06:00:00+00:00",
        "eventType": "START",
        "producer": AIRFLOW,
        "schemaURL": SPEC,
        "run": {
            "runId": str(dag_run),
            "facets": {
                "airflowDagRun": _facet(
                    AIRFLOW,
                    "AirflowDagRunFacet",
                    dag={"dag_id": "sales_daily", "schedule_interval": "@daily", "tags": "[]"},
                    dagRun={"run_id": "scheduled__2026-10-01T00:00:00+00:00", "conf": {}},
                ),
                "nominalTime": _facet(
                    AIRFLOW, "NominalTimeRunFacet", nominalStartTime="2026-10-01T00:00:00Z"
                ),
            },
        },
        "job": {
            "namespace": "airflow-prod",
            "name": "sales_daily",
            "facets": {
                "jobType": _facet(
                    AIRFLOW,
                    "JobTypeJobFacet",
                    processingType="BATCH",
                    integration="AIRFLOW",
                    jobType="DAG",
                ),
                "ownership": _facet(AIRFLOW, "OwnershipJobFacet", owners=[{"name": "data-eng"}]),
            },
        },
        "inputs": [],
        "outputs": [],
    }
    task = copy.deepcopy(dag)
    task["eventTime"] = "2026-10-01T06:05:00+00:00"
    task["eventType"] = "COMPLETE"
    task["run"] = {
        "runId": str(task_run),
        "facets": {
            "parent": _facet(
                AIRFLOW,
                "ParentRunFacet",
                run={"runId": str(dag_run)},
                job={"namespace": "airflow-prod", "name": "sales_daily"},
            ),
            "airflow": _facet(
                AIRFLOW,
                "AirflowRunFacet",
                task={"operator_class": "SQLExecuteQueryOperator", "retries": 3},
                taskInstance={"try_number": 1, "pool": "default_pool"},
                # unparseable attributes travel as strings, as the provider sends them
                unknownSourceAttribute={"unknownItems": [{"name": "op", "properties": "x"}]},
            ),
            "errorMessage": None,
        },
    }
    task["job"] = {"namespace": "airflow-prod", "name": "sales_daily.load_totals"}
    task["inputs"] = [dataset("postgres://db:5432", "sales.public.orders")]
    task["outputs"] = [dataset("postgres://db:5432", "sales.public.totals")]
    return dag_run, task_run, [dag, task]


def dbt_event(run_id, parent_id):
    return {
        "eventTime": "2026-10-01T07:00:00.000000+00:00",
        "eventType": "COMPLETE",
        "producer": DBT,
        "schemaURL": SPEC,
        "run": {
            "runId": str(run_id),
            "facets": {
                "parent": _facet(
                    DBT,
                    "ParentRunFacet",
                    run={"runId": str(parent_id)},
                    job={"namespace": "dbt", "name": "dbt-run-analytics"},
                ),
                "dbt_version": _facet(DBT, "DbtVersionRunFacet", version="1.8.2"),
                "dbt_run": _facet(DBT, "DbtRunRunFacet", invocation_id=str(uuid.uuid4())),
            },
        },
        "job": {
            "namespace": "dbt",
            "name": "analytics.marts.fct_orders",
            "facets": {
                "sql": _facet(DBT, "SQLJobFacet", query="select * from {{ ref('stg_orders') }}"),
                "jobType": _facet(
                    DBT,
                    "JobTypeJobFacet",
                    processingType="BATCH",
                    integration="DBT",
                    jobType="MODEL",
                ),
            },
        },
        "inputs": [
            {
                "namespace": "snowflake://acme.eu-west-1",
                "name": "analytics.staging.stg_orders",
                "facets": {
                    "dataSource": _facet(
                        DBT, "DatasourceDatasetFacet", name="snowflake://acme", uri="snowflake://"
                    )
                },
                "inputFacets": {
                    "dataQualityAssertions": _facet(
                        DBT,
                        "DataQualityAssertionsDatasetFacet",
                        assertions=[{"assertion": "not_null", "success": True, "column": "id"}],
                    )
                },
            }
        ],
        "outputs": [
            {
                "namespace": "snowflake://acme.eu-west-1",
                "name": "analytics.marts.fct_orders",
                "facets": {
                    "schema": schema_facet({"name": "id", "type": "NUMBER"}),
                    "documentation": _facet(
                        DBT, "DocumentationDatasetFacet", description="One row per order."
                    ),
                },
                "outputFacets": {
                    "outputStatistics": _facet(
                        DBT, "OutputStatisticsOutputDatasetFacet", rowCount=1234, size=None
                    )
                },
            }
        ],
    }


def flink_event(run_id, event_type="RUNNING"):
    """A streaming job: RUNNING checkpoints, Kafka topics, no dataset versions."""
    return {
        "eventTime": "2026-10-01T09:00:00Z",
        "eventType": event_type,
        "producer": FLINK,
        "schemaURL": SPEC,
        "run": {
            "runId": str(run_id),
            "facets": {
                "flink_job": _facet(FLINK, "FlinkJobFacet", jobId="a1b2c3"),
                "checkpoints": _facet(
                    FLINK,
                    "CheckpointsRunFacet",
                    completed=17,
                    failed=0,
                    in_progress=1,
                    total=18,
                ),
            },
        },
        "job": {
            "namespace": "flink-jobs",
            "name": "orders_enrichment",
            "facets": {
                "jobType": _facet(
                    FLINK,
                    "JobTypeJobFacet",
                    processingType="STREAMING",
                    integration="FLINK",
                    jobType="JOB",
                )
            },
        },
        "inputs": [
            dataset(
                "kafka://broker:9092",
                "orders",
                schema=schema_facet({"name": "order_id", "type": "long"}),
            )
        ],
        "outputs": [dataset("kafka://broker:9092", "orders_enriched")],
    }


def _depth(value):
    if isinstance(value, dict | list):
        children = value.values() if isinstance(value, dict) else value
        return 1 + max((_depth(child) for child in children), default=0)
    return 0


def _stored(payload):
    return LineageEvent.objects.get(run_id=payload["run"]["runId"]).payload


def test_a_spark_event_with_a_deep_and_large_logical_plan_is_accepted_and_mapped(post):
    run_id = uuid.uuid4()
    event = spark_event(run_id)
    assert len(json.dumps(event)) > 300_000  # hundreds of KB, as real plans are
    assert _depth(event["run"]["facets"]) > 40  # far deeper than the model-parameter rule's 8
    response = post(event)
    assert response.status_code == 201, response.content
    stored = LineageEvent.objects.get()
    assert stored.payload == event and stored.state == "mapped"
    # the run keeps its facets exactly as sent: no model-parameter rule applies to them
    assert Run.objects.get(run_id=run_id).facets == event["run"]["facets"]
    assert Edge.objects.filter(
        source="datasetField:hdfs://warehouse:/sales/orders:amount",
        target="datasetField:hdfs://warehouse:/sales/totals:total",
        relation="column",
    ).exists()
    assert Feature.objects.filter(dataset__name="/sales/totals", name="address.city").exists()


def test_a_gzipped_spark_event_is_accepted(pipeline_client):
    event = spark_event(uuid.uuid4())
    response = pipeline_client.post(
        "/api/v1/lineage",
        gzip.compress(json.dumps(event).encode()),
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 201
    assert LineageEvent.objects.get().payload == event


def test_airflow_dag_and_task_runs_map_with_their_parent(post):
    dag_run, task_run, events = airflow_events()
    for event in events:
        assert post(event).status_code == 201
    task = Run.objects.get(run_id=task_run)
    assert task.parent.run_id == dag_run
    assert task.facets["airflow"]["task"]["operator_class"] == "SQLExecuteQueryOperator"
    assert Edge.objects.filter(
        source=f"run:{dag_run}", target=f"run:{task_run}", relation="parent"
    ).exists()
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}


def test_a_dbt_model_event_with_input_and_output_facets_is_stored_as_sent(post):
    run_id, parent = uuid.uuid4(), uuid.uuid4()
    event = dbt_event(run_id, parent)
    assert post(event).status_code == 201
    assert _stored(event) == event
    assert Run.objects.get(run_id=run_id).parent.run_id == parent
    assert Feature.objects.get(dataset__name="analytics.marts.fct_orders").name == "id"


def test_a_streaming_flink_job_reports_running_then_completes(post):
    run_id = uuid.uuid4()
    assert post(flink_event(run_id)).status_code == 201
    assert Run.objects.get(run_id=run_id).state == "RUNNING"
    later = flink_event(run_id, "COMPLETE")
    later["eventTime"] = "2026-10-01T12:00:00Z"
    assert post(later).status_code == 201
    assert Run.objects.get(run_id=run_id).state == "COMPLETE"


def test_custom_facets_of_any_shape_are_stored_as_given(post):
    event = flink_event(uuid.uuid4())
    event["run"]["facets"]["vendor_thing"] = ["not", "an", {"object": [1, 2.5, None]}]
    event["job"]["facets"]["odd"] = "a string where an object is usual"
    event["outputs"][0]["facets"]["dataQualityMetrics"] = {"rowCount": "many"}
    assert post(event).status_code == 201
    assert _stored(event) == event


def _nest(levels):
    value = 1
    for _ in range(levels):
        value = {"k": value}
    return value


def test_facets_nested_as_deep_as_the_limit_are_accepted(post, settings):
    assert settings.LINEAGE_MAX_FACET_DEPTH == 64  # the documented default
    event = flink_event(uuid.uuid4())
    event["run"]["facets"] = _nest(64)
    assert post(event).status_code == 201


def test_facets_nested_deeper_than_the_limit_are_refused_with_field_and_limit(post):
    event = flink_event(uuid.uuid4())
    event["run"]["facets"] = _nest(65)
    response = post(event)
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "run.facets" and "64" in error["message"]
    assert not LineageEvent.objects.exists()


def test_an_event_over_the_size_limit_is_refused_with_field_and_limit(post, settings):
    assert settings.LINEAGE_MAX_EVENT_BYTES == 2 * 1024 * 1024  # the documented default
    settings.LINEAGE_MAX_EVENT_BYTES = 200_000
    response = post(spark_event(uuid.uuid4()))
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "run.facets"
    assert "200000" in error["message"] and "LINEAGE_MAX_EVENT_BYTES" in error["message"]
    assert not LineageEvent.objects.exists()


def test_the_event_size_limit_applies_to_each_event_of_a_batch(pipeline_client, settings):
    settings.LINEAGE_MAX_EVENT_BYTES = 200_000
    small = flink_event(uuid.uuid4())
    response = pipeline_client.post(
        "/api/v1/lineage/batch", [small, spark_event(uuid.uuid4())], format="json"
    )
    body = response.json()
    assert body["summary"]["successful"] == 1
    failure = body["failed_events"][0]
    assert failure["index"] == 1 and failure["status"] == 422
    assert failure["errors"][0]["field"] == "run.facets"
    assert LineageEvent.objects.count() == 1


def test_a_request_over_the_request_size_limit_is_413(pipeline_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    response = pipeline_client.post(
        "/api/v1/lineage/batch", [spark_event(uuid.uuid4())], format="json"
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["message"]
    assert not LineageEvent.objects.exists()


def test_malformed_standard_facets_that_modelgov_interprets_are_still_refused(post):
    event = flink_event(uuid.uuid4())
    event["inputs"][0]["facets"]["schema"] = schema_facet({"type": "long"})  # no name
    response = post(event)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "inputs.0.facets.schema.fields.0.name"
    assert not LineageEvent.objects.exists()
