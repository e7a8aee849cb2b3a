"""Django integration: index your models on commit, search them as model instances.

Add ``"semsearch.django"`` to ``INSTALLED_APPS``, register a model, migrate::

    from semsearch.django import register, semantic_search

    @register(fields=("title", "body"), metadata=("lang",))
    class Article(models.Model):
        ...

    semantic_search(Article, "how do I brew green tea?", k=5)   # [<Article>, ...] with .semsearch_score

Settings, the sync modes and the management commands: see :mod:`semsearch.django.conf`,
:mod:`semsearch.django.registry` and ``examples/django_project``.
"""

try:
    import django  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("semsearch.django needs Django: pip install 'semsearch[django]'") from exc

from semsearch.django.registry import Registration, register, registration_for
from semsearch.django.search import semantic_search

__all__ = ["Registration", "register", "registration_for", "semantic_search"]
