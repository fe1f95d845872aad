def test_health_answers_ok_without_credentials(api, db):
    response = api().get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
