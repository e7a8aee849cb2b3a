from django.db import models

from semsearch.django import register


# indexed on commit: title and body are embedded, lang is metadata for where={"lang": ...}
@register(fields=("title", "body"), metadata=("lang",))
class Article(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField()
    lang = models.CharField(max_length=8, default="en")

    def __str__(self) -> str:
        return self.title
