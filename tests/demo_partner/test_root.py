from django.conf import settings


def test_root_names_the_resources(client, db):
    assert client.get("/demo-partner/").status_code == 401
    response = client.get(
        "/demo-partner/", HTTP_AUTHORIZATION=f"Bearer {settings.PONTIS_DEMO_PARTNER_TOKEN}"
    )
    assert response.status_code == 200
    assert response.json() == {
        "name": "Demo Partner API",
        "resources": {
            "customers": "http://testserver/demo-partner/customers/",
            "orders": "http://testserver/demo-partner/orders/",
            "invoices": "http://testserver/demo-partner/invoices/",
        },
    }
