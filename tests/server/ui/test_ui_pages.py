"""Every UI page through the app (TestClient): what it shows, hostile input escaped,
bad input as an error on the page, unknown ids as a 404 page, never a 500."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import quote, urljoin

import orjson
import pytest

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
RUN_LINK = re.compile(r'<td class="nowrap"><a href="/runs/([0-9a-f]{32})">([^<]*)</a></td>')


def _run_names(html: str) -> list[str]:
    return [unescape(name) for _, name in RUN_LINK.findall(html)]


def _href(html: str, text: str, base: str) -> str:
    # The URL of the link showing ``text``, resolved like a browser does against ``base``.
    match = re.search(r'href="([^"]*)"[^>]*>' + re.escape(text), html)
    assert match, f"no link {text!r}"
    return urljoin(base, unescape(match.group(1)))


def _get(client: Any, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def test_the_experiments_page_lists_experiments_with_hostile_names_escaped(ui_client, seeded):
    response = ui_client.get("/")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    html = _get(ui_client, "/")
    assert f'href="/experiments/{seeded.experiment_id}">iris-sweep</a>' in html
    assert ESCAPED in html
    assert HOSTILE not in html


def test_the_runs_table_pages_server_side_with_default_columns(ui_client, seeded):
    base = f"/experiments/{seeded.experiment_id}"
    html = _get(ui_client, base)
    assert len(_run_names(html)) == 50
    assert "Runs 1–50" in html
    # The page's most common metric and param keys are the default columns.
    for key in ("accuracy", "loss", "C", "solver", "seed"):
        assert f'title="Sort by {key}"' in html
    second = _get(ui_client, _href(html, "Next page →", base))
    assert len(_run_names(second)) == 14  # 62 sweep runs + 2 more
    assert "Runs 51–64" in second
    assert "Next page →" not in second
    first_again = _get(ui_client, _href(second, "← Previous", base))
    assert _run_names(first_again) == _run_names(html)


def test_sorting_a_column_orders_runs_by_the_search_language(ui_client, seeded):
    base = f"/experiments/{seeded.experiment_id}"
    html = _get(ui_client, base)
    by_accuracy = _get(ui_client, _href(html, "accuracy", base))
    names = _run_names(by_accuracy)
    assert names[:3] == ["final-model", "sweep-61", "sweep-60"]
    assert 'accuracy <span class="arrow">▼</span>' in by_accuracy
    ascending = _get(ui_client, _href(by_accuracy, "accuracy", base))
    assert _run_names(ascending)[0] == HOSTILE  # accuracy 0.5, the lowest
    assert 'accuracy <span class="arrow">▲</span>' in ascending


def test_the_filter_box_takes_the_search_language(ui_client, seeded):
    url = f"/experiments/{seeded.experiment_id}?filter=" + quote("params.solver = 'saga'")
    names = _run_names(_get(ui_client, url))
    assert len(names) == 31
    assert all(int(n.split("-")[1]) % 2 == 0 for n in names)


def test_a_bad_filter_shows_its_error_on_the_page(ui_client, seeded):
    url = f"/experiments/{seeded.experiment_id}?filter=" + quote("metrics.accuracy >>> 1")
    html = _get(ui_client, url, 400)
    assert 'class="error" role="alert"' in html
    assert "filter" in html.lower()
    assert 'value="metrics.accuracy &gt;&gt;&gt; 1"' in html  # still in the box, escaped
    assert _run_names(html) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page_token=" + "A" * 5000, "page_token"),
        ("page_token=not-a-token", "invalid page token"),
        ("columns=bogus.key", "unknown column"),
        ("order_by=" + quote("metrics.`accuracy` sideways"), "order_by"),
    ],
)
def test_bad_paging_columns_and_order_are_a_400_page(ui_client, seeded, query, message):
    html = _get(ui_client, f"/experiments/{seeded.experiment_id}?{query}", 400)
    assert message in html


def test_chosen_columns_show_and_the_keys_come_from_a_cheap_query(ui_client, seeded):
    url = f"/experiments/{seeded.experiment_id}?columns=" + quote("metrics.extra/m05,tags.note")
    html = _get(ui_client, url)
    assert 'title="Sort by extra/m05"' in html
    assert 'title="Sort by note"' in html
    assert 'title="Sort by accuracy"' not in html
    assert ESCAPED in html
    assert HOSTILE not in html
    keys = ui_client.get(f"/experiments/{seeded.experiment_id}/keys").json()
    assert keys["metrics"][:2] == ["accuracy", "extra/m00"]
    assert len(keys["metrics"]) == 32
    assert keys["params"] == ["C", "seed", "solver"]


def test_a_run_page_shows_params_charts_tags_artifacts_and_inputs(ui_client, seeded):
    html = _get(ui_client, f"/runs/{seeded.model_run_id}")
    assert "<h1>final-model" in html
    assert '<td>solver</td><td class="mono">lbfgs</td>' in html
    data = orjson.loads(html.split('id="charts-data">', 1)[1].split("</script>", 1)[0])
    # loss is charted over its 5 steps; accuracy, logged at one step, is in the table only.
    assert [(c["title"], c["traces"][0]["x"]) for c in data] == [("loss", [0, 1, 2, 3, 4])]
    assert '<td>accuracy</td><td class="num">0.973333</td>' in html
    assert "/static/plotly/" in html
    assert "notes/readme.txt" in html
    assert "<td>iris</td><td>training</td>" in html
    download = ui_client.get(f"/runs/{seeded.model_run_id}/artifacts/notes/readme.txt")
    assert download.status_code == 200
    assert download.content == b"features: sepal and petal sizes\n"
    assert "filename*=UTF-8''readme.txt" in download.headers["content-disposition"]
    missing = ui_client.get(f"/runs/{seeded.model_run_id}/artifacts/nope.txt")
    assert missing.status_code == 404
    assert "has no artifact" in missing.text


def test_a_hostile_run_is_escaped_in_html_and_in_the_chart_data(ui_client, seeded):
    html = _get(ui_client, f"/runs/{seeded.hostile_run_id}")
    assert HOSTILE not in html
    assert f"<h1>{ESCAPED}" in html
    assert "Every metric was logged at a single step" in html
    assert 'id="charts-data"' not in html
    compare = _get(ui_client, f"/compare?run={seeded.hostile_run_id}&run={seeded.best_run_id}")
    assert HOSTILE not in compare
    data = compare.split('id="charts-data">', 1)[1].split("</script>", 1)[0]
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in data


def test_compare_highlights_the_params_that_differ(ui_client, seeded):
    url = f"/compare?run={seeded.best_run_id}&run={seeded.worst_run_id}"
    html = _get(ui_client, url)
    assert "Compare 2 runs" in html
    assert '<tr class="differs">\n    <td>C <span class="badge">differs</span>' in html
    assert '<tr class="same">\n    <td>seed</td>' in html
    assert "2 of 3 params differ" in html
    data = orjson.loads(html.split('id="charts-data">', 1)[1].split("</script>", 1)[0])
    by_title = {chart["title"]: chart["traces"] for chart in data}
    # The metrics both runs have are charted first, one trace per run, overlaid.
    assert [c["title"] for c in data[:2]] == ["accuracy", "loss"]
    assert [len(by_title[k]) for k in ("accuracy", "loss")] == [2, 2]
    assert by_title["loss"][0]["x"] == list(range(8))


@pytest.mark.parametrize("query", ["", "run=" + "a" * 32, "run=x&run=y"])
def test_compare_needs_two_known_runs(ui_client, query):
    response = ui_client.get(f"/compare?{query}")
    assert response.status_code in (400, 404)
    assert "text/html" in response.headers["content-type"]


@pytest.mark.parametrize(
    "url",
    [
        "/experiments/" + "0" * 32,
        "/experiments/not-an-id",
        "/runs/" + "f" * 32,
        "/runs/" + "x" * 3000,
        "/models/no-such-model",
        "/models/iris-classifier/versions/99",
        "/models/iris-classifier/versions/abc",
        "/models/iris-classifier/versions/" + "9" * 40,
    ],
)
def test_unknown_ids_get_a_friendly_404_page(ui_client, url):
    html = _get(ui_client, url, 404)
    assert "<h1>Not found</h1>" in html
    assert "Back to the experiments" in html


def test_the_models_pages_show_versions_aliases_card_and_run(ui_client, seeded):
    models = _get(ui_client, "/models")
    assert '<a href="/models/iris-classifier">iris-classifier</a>' in models
    assert "@champion → v1" in models
    model = _get(ui_client, "/models/iris-classifier")
    assert '<a href="/models/iris-classifier/versions/1">v1</a>' in model
    assert "@champion" in model
    assert "sklearn" in model
    version = _get(ui_client, "/models/iris-classifier/versions/1")
    assert f'<a id="run-link" href="/runs/{seeded.model_run_id}">' in version
    card = version.split('id="model-card">', 1)[1].split("</article>", 1)[0]
    assert "<strong>Not</strong> for medical use" in card
    assert "<h3>iris-classifier — version 1</h3>" in card  # under the page's h1 and h2
    assert "<h1>" not in card
    assert HOSTILE not in card
    assert ESCAPED in card
    assert "<img" not in card
    assert "&lt;img src=x onerror=alert(2)&gt;" in card
    assert 'href="javascript:' not in card


def test_the_audit_log_shows_entries_filters_and_verifies(ui_client, seeded):
    html = _get(ui_client, "/audit?limit=1000")
    for action in ("experiment.create", "run.create", "version.create", "alias.set"):
        assert f'<span class="chip">{action}</span>' in html
    assert '<a class="mono" href="/models/iris-classifier">iris-classifier@champion</a>' in html
    assert f'href="/runs/{seeded.model_run_id}"' in html
    assert HOSTILE not in html
    models_only = _get(ui_client, "/audit?action=model")
    actions = set(re.findall(r'<span class="chip">([a-z_.]+)</span>', models_only))
    assert actions
    assert all(a.startswith("model.") for a in actions)
    assert "The chain checks out" in _get(ui_client, "/audit?verify=true")
    assert "not a time" in _get(ui_client, "/audit?since=yesterday-ish", 400)
    assert "query.limit" in _get(ui_client, "/audit?limit=0", 400)


def test_static_files_and_plotly_are_served_with_cache_headers(ui_client):
    html = _get(ui_client, "/runs/" + "0" * 32, 404)
    assert "/static/keel.css" in html
    css = ui_client.get("/static/keel.css")
    assert css.status_code == 200
    assert "table.grid" in css.text
    from keel.server.ui.charts import plotly_url

    url = plotly_url()
    assert url is not None, "plotly (the ui-charts extra) is installed by make test"
    js = ui_client.get(url)
    assert js.status_code == 200
    assert "immutable" in js.headers["cache-control"]
    assert len(js.content) > 1_000_000
    assert ui_client.get("/static/plotly/0.0.0/plotly.min.js").status_code == 404


def test_without_plotly_pages_work_and_name_the_extra(ui_client, seeded, monkeypatch):
    from keel.server.ui import charts

    monkeypatch.setattr(charts, "_plotly", lambda: None)
    html = _get(ui_client, f"/runs/{seeded.model_run_id}")
    assert "pip install &#39;keel-mlops[ui-charts]&#39;" in html
    assert "/static/plotly/" not in html
    assert 'id="params"' in html


def test_the_ui_is_not_in_the_openapi_schema(ui_client):
    paths = ui_client.get("/openapi.json").json()["paths"]
    assert "/api/v1/experiments/{experiment_id}/keys" in paths
    assert all(p.startswith(("/api/", "/health", "/metrics")) for p in paths), sorted(paths)
