from django.apps import AppConfig


class ModelcardsConfig(AppConfig):
    name = "modelcards"
    verbose_name = "Model cards"

    def ready(self) -> None:
        from approvals.gates import register_gate
        from modelcards.selectors import CARD_GATE, CARD_GATE_LABEL, card_gate

        # Production policies require it before approving (approvals.workflow defaults).
        register_gate(CARD_GATE, CARD_GATE_LABEL, card_gate)
