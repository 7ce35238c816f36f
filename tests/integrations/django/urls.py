from __future__ import annotations

from django.urls import path

from errwire.integrations.django.views import health

from . import views

urlpatterns = [
    path("ok/", views.ok),
    path("boom/", views.boom),
    path("enhanced/", views.enhanced),
    path("orders/<int:pk>/", views.order),
    path("missing/", views.missing),
    path("denied/", views.denied),
    path("bad/", views.bad),
    path("suspicious/", views.suspicious),
    path("logs/", views.logs),
    path("message/", views.message),
    path("outer-fail/", views.ok),
    path("async/ok/", views.async_ok),
    path("async/boom/", views.async_boom),
    path("async/wait/<str:name>/", views.async_wait),
    path("timeout/", views.timeout),
    path("pay/<int:order>/", views.pay),
    path("refund/<int:order>/", views.refund),
    path("async/pay/<int:order>/", views.async_pay),
    path("rendered/", views.rendered),
    path("captured/", views.captured_with_component),
    path("decorated/", views.decorated_timeout),
    path("class-based/", views.TimeoutView.as_view()),
    path("health/", health),
]
