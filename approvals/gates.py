"""Gates: evidence that must hold before a promotion may be filed or approved.

A gate is a named function of a model version that returns None when the evidence is there,
or a sentence saying what is missing. Policies list gate names (filing gates and approval
gates). Apps to the right of approvals add theirs from their AppConfig.ready, e.g.

    from approvals.gates import register_gate
    register_gate("model_card_current", "Model card for the current content", check)

A policy naming a gate that no app registered fails closed: the gate reads as not holding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from registry.models import ModelVersion

Check = Callable[[ModelVersion], str | None]


@dataclass(frozen=True)
class Gate:
    name: str
    label: str
    check: Check


@dataclass(frozen=True)
class GateResult:
    name: str
    label: str
    ok: bool
    message: str


_GATES: dict[str, Gate] = {}


def register_gate(name: str, label: str, check: Check) -> None:
    """Make a gate available to policies (registering a name again replaces it)."""
    _GATES[name] = Gate(name=name, label=label, check=check)


def known_gates() -> dict[str, Gate]:
    return dict(_GATES)


def evaluate(names: Iterable[str], version: ModelVersion) -> list[GateResult]:
    results = []
    for name in names:
        gate = _GATES.get(name)
        if gate is None:
            results.append(GateResult(name, name, False, f"Gate '{name}' is not available."))
            continue
        problem = gate.check(version)
        results.append(GateResult(name, gate.label, problem is None, problem or "holds"))
    return results


def failures(names: Iterable[str], version: ModelVersion) -> list[GateResult]:
    return [r for r in evaluate(names, version) if not r.ok]


# --- built-in gates ----------------------------------------------------------------------------

MODEL_CARD_FIELDS = ("intended_use", "limitations", "training_data_summary", "evaluation_summary")


def _training_lineage(version: ModelVersion) -> str | None:
    if version.training_run_id is not None:
        return None
    from lineage import nodes
    from lineage.models import Edge, Relation

    node = nodes.model_id(version.model.name, version.version)
    if Edge.objects.filter(target=node, relation=Relation.TRAINED_ON).exists():
        return None
    return "No training lineage: the version names no training run and no trained-on data."


def _metrics_present(version: ModelVersion) -> str | None:
    return None if version.metrics else "No evaluation metrics are recorded."


def _model_card_fields(version: ModelVersion) -> str | None:
    missing = [f for f in MODEL_CARD_FIELDS if not (getattr(version, f) or "").strip()]
    if not missing:
        return None
    return "Model-card fields are empty: " + ", ".join(f.replace("_", " ") for f in missing) + "."


register_gate("training_lineage", "Training lineage present", _training_lineage)
register_gate("metrics_present", "Evaluation metrics present", _metrics_present)
register_gate("model_card_fields", "Model-card fields filled", _model_card_fields)
