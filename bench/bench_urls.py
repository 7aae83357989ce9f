"""The product's URLs plus one bare view, so a bench can compare the webhook with Django's floor on one server."""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from lumaweb.urls import urlpatterns as product_urls


@csrf_exempt
def bare(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare/", bare), *product_urls]
