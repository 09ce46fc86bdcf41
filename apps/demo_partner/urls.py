"""Mounted by config.urls under ``/demo-partner/`` (namespace ``demo_partner``)."""

from django.urls import path

from apps.demo_partner import views

app_name = "demo_partner"

urlpatterns = [
    path("", views.index, name="index"),
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/<str:customer_id>/", views.customer_detail, name="customer-detail"),
    path("orders/", views.order_list, name="order-list"),
    path("orders/<str:number>/", views.order_detail, name="order-detail"),
    path("invoices/", views.invoice_list, name="invoice-list"),
    path("invoices/<str:number>/", views.invoice_detail, name="invoice-detail"),
]
