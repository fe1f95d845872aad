"""Node ids of the lineage graph (pure).

Marquez's forms where it has them — `dataset:{namespace}:{name}`, `job:{namespace}:{name}`,
`datasetField:{namespace}:{name}:{field}`, `run:{uuid}`, a version appended as `#{version}` —
and modelgov's own `model:{name}:{version}`. Namespaces are often URIs with colons
(`postgres://host:5432`) and names may hold colons too, so ids are split like Marquez: after the
prefix, the first `:` that is not part of `scheme://host:port` (or of the other forms of
`_URI_NAMESPACE`: a list of hosts, Spanner's project and instance, an ARN) ends the
namespace. Read endpoints also take explicit `type`, `namespace` and `name` to avoid the
ambiguity.

Names may hold `#` (SQL Server's temporary tables, `db.dbo.#stage`; paths): the last `#` of a
dataset id starts its version, and a `#` inside a version is written `%23` in the id.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

KINDS = ("dataset", "job", "datasetField", "run", "model")
# A namespace holding colons of its own, at the start of an id: `scheme://authority`, the
# authority a host (an IPv6 address in brackets, with a zone id or not) with an optional port,
# or several of them separated by commas (Kafka's bootstrap servers, as some producers send
# them); Spanner's `spanner://{projectId}:{instanceId}` (the naming spec's); or an ARN's five
# fields `arn:partition:service:region:account` (Glue's namespace in the naming spec:
# `arn:aws:glue:{region}:{account id}`, the name then `table/{db}/{table}`).
_HOST = r"(?:\[[0-9A-Fa-f:.]*(?:%[^\]/:]*)?\]|[^/:,\[\]]*)(?::\d+)?"
_URI_NAMESPACE = re.compile(
    r"^(?:(?i:spanner)://[^/:]*:[^/:]*"
    rf"|[A-Za-z][A-Za-z0-9+.-]*://{_HOST}(?:,{_HOST})*"
    r"|arn:[^:/]*:[^:/]*:[^:/]*:[^:/]*)"
)


def dataset_id(namespace: str, name: str, version: str | None = None) -> str:
    base = f"dataset:{namespace}:{name}"
    return f"{base}#{version.replace('#', '%23')}" if version is not None else base


def job_id(namespace: str, name: str) -> str:
    return f"job:{namespace}:{name}"


def field_id(namespace: str, name: str, field: str) -> str:
    return f"datasetField:{namespace}:{name}:{field}"


def run_id(run_uuid: object) -> str:
    return f"run:{run_uuid}"


def model_id(name: str, version: int) -> str:
    return f"{model_prefix(name)}{version}"


def model_prefix(name: str) -> str:
    """What every node id of a model's versions begins with."""
    return f"model:{name}:"


def base_of(node: str) -> str:
    """The unversioned id of a dataset version's: `dataset:ns:name#v` → `dataset:ns:name`."""
    return node.rpartition("#")[0] or node if node.startswith("dataset:") else node


def version_of(node: str) -> str:
    """The version of a dataset version's id: `dataset:ns:name#v` → `v`."""
    return node.rpartition("#")[2].replace("%23", "#")


@dataclass(frozen=True)
class NodeRef:
    kind: str
    namespace: str | None = None
    name: str | None = None
    version: str | None = None
    field: str | None = None

    @property
    def id(self) -> str:
        if self.kind == "dataset":
            return dataset_id(self.namespace, self.name, self.version)
        if self.kind == "job":
            return job_id(self.namespace, self.name)
        if self.kind == "datasetField":
            return field_id(self.namespace, self.name, self.field)
        if self.kind == "run":
            return run_id(self.name)
        return model_id(self.name, int(self.version))


def _split_namespace(rest: str) -> tuple[str, str] | None:
    match = _URI_NAMESPACE.match(rest)
    start = match.end() if match else 0
    index = rest.find(":", start)
    if index <= 0:
        return None
    return rest[:index], rest[index + 1 :]


def is_run_id(text: str) -> bool:
    """Whether `text` reads as a run id (a UUID, in any form Python's uuid takes)."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def parse(node: str, *, versioned: bool = True) -> NodeRef:
    """Parse a node id, or raise ValueError saying what is wrong with it. `versioned=False`:
    a dataset id is a dataset's (its name may hold `#`), not a version's."""
    kind, sep, rest = node.partition(":")
    if not sep or kind not in KINDS or not rest:
        raise ValueError(f"node ids start with one of {', '.join(KINDS)} followed by ':'")
    if kind == "run":
        if not is_run_id(rest):
            raise ValueError("run ids read run:{run id}, the run id a UUID")
        return NodeRef(kind="run", name=rest)
    if kind == "model":
        name, sep, version = rest.rpartition(":")
        if not sep or not name or not version.isdigit():
            raise ValueError("model ids read model:{name}:{version number}")
        return NodeRef(kind="model", name=name, version=version)
    version = None
    if kind == "dataset" and versioned and "#" in rest:
        rest, _, version = rest.rpartition("#")
        version = version.replace("%23", "#")
    parts = _split_namespace(rest)
    if parts is None:
        raise ValueError(f"{kind} ids read {kind}:{{namespace}}:{{name}}")
    namespace, name = parts
    if kind == "datasetField":
        name, sep, field = name.rpartition(":")
        if not sep or not name or not field:
            raise ValueError("field ids read datasetField:{namespace}:{name}:{field}")
        return NodeRef(kind=kind, namespace=namespace, name=name, field=field)
    return NodeRef(kind=kind, namespace=namespace, name=name, version=version)
