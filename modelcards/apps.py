from django.apps import AppConfig


class ModelcardsConfig(AppConfig):
    name = "modelcards"
    verbose_name = "Model cards"
