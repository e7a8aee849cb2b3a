from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from articles.models import Article
from semsearch.django import semantic_search
from semsearch.errors import InvalidInputError

MODES = ("vector", "hybrid", "text")


def search(request: HttpRequest) -> HttpResponse:
    """``/search/?q=...&mode=vector|hybrid|text&lang=en``: a page, or JSON with ``&format=json``."""
    query = request.GET.get("q", "").strip()
    mode = request.GET.get("mode", "vector")
    lang = request.GET.get("lang") or None
    error, results = None, []
    if query:
        try:
            # instances in score order, each with .semsearch_score
            results = semantic_search(Article, query, k=10, mode=mode, where={"lang": lang} if lang else None)
        except InvalidInputError as exc:
            error = str(exc)
    if request.GET.get("format") == "json":
        if error:
            return JsonResponse({"error": error}, status=400)
        hits = [{"id": a.pk, "title": a.title, "lang": a.lang, "score": round(a.semsearch_score, 4)} for a in results]
        return JsonResponse({"query": query, "mode": mode, "results": hits})
    context = {"query": query, "mode": mode, "modes": MODES, "lang": lang or "", "results": results, "error": error}
    return render(request, "articles/search.html", context, status=400 if error else 200)
