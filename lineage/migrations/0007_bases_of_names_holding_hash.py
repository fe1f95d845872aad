"""Dataset names may hold `#` (SQL Server's temporary tables, `db.dbo.#stage`): the last `#`
of a dataset version's id starts its version. Edges stored before took the first, so their
stored bases cut such names short: each is worked out again where the dataset the last `#`
gives is catalogued. (A version holding `#` is now written `%23` in ids; edges stored with
one keep their ids, and their bases, since no catalogued dataset has the shorter name.)"""

import re

from django.db import migrations

_URI_NAMESPACE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/:]*(?::\d+)?")


def _key(base: str) -> tuple[str, str] | None:
    """(namespace, name) of `dataset:{namespace}:{name}` (as lineage.nodes splits it)."""
    rest = base.removeprefix("dataset:")
    match = _URI_NAMESPACE.match(rest)
    index = rest.find(":", match.end() if match else 0)
    return (rest[:index], rest[index + 1 :]) if index > 0 else None


def rebase(apps, schema_editor):
    Edge = apps.get_model("lineage", "Edge")
    Dataset = apps.get_model("registry", "Dataset")
    edges = list(
        Edge.objects.filter(source__regex=r"^dataset:.*#.*#")
        | Edge.objects.filter(target__regex=r"^dataset:.*#.*#")
    )
    wanted = {}
    for edge in edges:
        for node in (edge.source, edge.target):
            if node.startswith("dataset:") and node.count("#") > 1:
                wanted[node] = _key(node.rpartition("#")[0])
    keys = {key for key in wanted.values() if key}
    known = set()
    for namespace in {ns for ns, _ in keys}:
        names = sorted(name for ns, name in keys if ns == namespace)
        known |= {
            (namespace, name)
            for name in Dataset.objects.filter(namespace=namespace, name__in=names).values_list(
                "name", flat=True
            )
        }
    changed = []
    for edge in edges:
        bases = [edge.source_base, edge.target_base]
        for index, node in enumerate((edge.source, edge.target)):
            if wanted.get(node) in known:
                bases[index] = node.rpartition("#")[0]
        if bases != [edge.source_base, edge.target_base]:
            edge.source_base, edge.target_base = bases
            changed.append(edge)
    Edge.objects.bulk_update(changed, ["source_base", "target_base"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("lineage", "0006_edge_base_indexes"),
        ("registry", "0009_version_schema_json"),
    ]

    operations = [migrations.RunPython(rebase, migrations.RunPython.noop)]
