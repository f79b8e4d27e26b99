"""The reviewer pages behind a proxy that serves the app at a prefix and strips it (REINTEGRA_ROOT_PATH):
every address a page gives out, and the session cookie, must carry the prefix."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from urllib.parse import urljoin

import httpx
import pytest

from tests.serving.servers import Server, start_server

pytestmark = pytest.mark.slow

ROOT = "/reintegra"
PERSON = "P-PAGED"
PAGED_SCORES = 27  # over one page of 25, so the pager shows


class StrippingProxy(httpx.BaseTransport):
    """What the proxy does: forward an address under `root` without it; anything else is not this app."""

    def __init__(self, root: str):
        self.root = root.encode()
        self.upstream = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path
        if not path.startswith(self.root + b"/"):
            return httpx.Response(404, text=f"the proxy serves nothing at {path.decode()}")
        forwarded = httpx.Request(
            request.method,
            request.url.copy_with(raw_path=path.removeprefix(self.root)),
            headers=request.headers,
            stream=request.stream,
        )
        return self.upstream.handle_request(forwarded)

    def close(self) -> None:
        self.upstream.close()


class Addresses(HTMLParser):
    """Every href, src and form action of a page, with the form's method."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        for name in ("href", "src", "action"):
            if given.get(name) is not None:
                method = (given.get("method") or "get").lower() if tag == "form" else "get"
                self.found.append((method, given[name]))


def addresses(page: str) -> list[tuple[str, str]]:
    parser = Addresses()
    parser.feed(page)
    return parser.found


@pytest.fixture(scope="module")
def proxied(registry, tmp_path_factory, api_records) -> Iterator[Server]:
    server = start_server(
        registry, tmp_path_factory.mktemp("proxied"), extra_env={"REINTEGRA_ROOT_PATH": ROOT}
    )
    items = [{"person_id": PERSON, "record": api_records[i % 20]} for i in range(PAGED_SCORES)]
    with server.client("scorer") as scorer:
        assert scorer.post("/v1/scores:batch", json={"items": items}).status_code == 200
    yield server
    server.stop()


def proxied_client(server: Server) -> httpx.Client:
    """A client that reaches the server only through the proxy, keeping cookies by their Path."""
    return httpx.Client(base_url=server.base_url, transport=StrippingProxy(ROOT), timeout=30)


def token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    return found.group(1) if found else ""


def post_form(client: httpx.Client, page: httpx.Response, fields: dict[str, str]) -> httpx.Response:
    """Post the page's one POST form where its action says, with its token and hidden `next`."""
    [action] = [address for method, address in addresses(page.text) if method == "post"] or [""]
    hidden = re.search(r'name="next" value="([^"]*)"', page.text)
    form = {"csrf": token(page.text), **({"next": hidden.group(1)} if hidden else {}), **fields}
    return client.post(urljoin(str(page.url.raw_path, "ascii"), action), data=form)


class Walk:
    """A browser's walk through the pages: each address opened once; anything outside the prefix or
    not answering 200 is noted as broken."""

    def __init__(self, client: httpx.Client):
        self.client = client
        self.broken: list[str] = []
        self.opened: dict[str, int] = {}

    def visit(self, path: str) -> httpx.Response:
        """GET `path`, following redirects as a browser would."""
        response = self.client.get(path)
        while response.is_redirect:
            location = response.headers["location"]
            target = urljoin(path, location)
            if not target.startswith(f"{ROOT}/"):
                self.broken.append(f"{path} redirects to {location}")
            path = target
            response = self.client.get(path)
        return response

    def check(self, page_path: str) -> int:
        """Open every GET address on the page at `page_path`; returns how many it has."""
        page = self.visit(page_path)
        found = [a for method, a in addresses(page.text) if method == "get" and not a.startswith("#")]
        for address in found:
            target = urljoin(page_path, address)
            if not target.startswith(f"{ROOT}/"):
                self.broken.append(f"{page_path}: {address} is outside {ROOT}")
            elif target not in self.opened:
                self.opened[target] = self.visit(target).status_code
                if self.opened[target] != 200:
                    self.broken.append(f"{page_path}: {address} answers {self.opened[target]}")
        return len(found)


def cookie_paths(response: httpx.Response) -> set[str]:
    cookies = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        cookies.load(header)
    return {morsel["path"] for morsel in cookies.values()}


def test_every_address_on_the_pages_carries_the_prefix_and_opens(proxied, registry):
    with proxied_client(proxied) as client:
        walk = Walk(client)
        signed_in = post_form(
            client, walk.visit(f"{ROOT}/review/scores?band=high"), {"key": proxied.keys["reviewer"]}
        )
        landed = urljoin(f"{ROOT}/review/sign-in", signed_in.headers.get("location", ""))
        listed = walk.visit(f"{ROOT}/review/scores?person_id={PERSON}").text
        score_id = (
            re.search(r'data-score-id="([^"]+)"', listed).group(1) if "data-score-id" in listed else "none"
        )
        pages = [
            f"{ROOT}/review/scores",
            f"{ROOT}/review/scores?person_id={PERSON}&page=2",
            f"{ROOT}/review/scores?person_id={PERSON}&model_version={registry.version}",
            f"{ROOT}/review/scores/{score_id}",
            f"{ROOT}/review/people/{PERSON}",
            f"{ROOT}/review/model",
            f"{ROOT}/review/nowhere",
        ]
        counted = {path: walk.check(path) for path in pages}
        past_last = walk.visit(f"{ROOT}/review/scores?person_id={PERSON}&page=99")
        signed_out = post_form(client, past_last, {})
        after = client.get(f"{ROOT}/review/scores")
    assert signed_in.status_code == 303 and landed == f"{ROOT}/review/scores?band=high"
    assert cookie_paths(signed_in) == {f"{ROOT}/review"}
    assert walk.broken == [], f"{len(walk.broken)} broken of {sum(counted.values())} addresses on {counted}"
    assert all(counted.values()), counted
    assert past_last.status_code == 200 and "page 2 of 2" in past_last.text
    assert signed_out.headers["location"] == f"{ROOT}/review/sign-in?signed_out=true"
    assert cookie_paths(signed_out) == {f"{ROOT}/review"} and not client.cookies
    assert after.status_code == 303 and after.headers["location"].startswith(f"{ROOT}/review/sign-in?")


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        (f"{ROOT}/review/people/{PERSON}", f"{ROOT}/review/people/{PERSON}"),
        # At the host's root, not this app behind the proxy: another app's page, or none.
        ("/review/people/x", f"{ROOT}/review/scores"),
        (f"{ROOT}/other", f"{ROOT}/review/scores"),
        ("//evil.example/", f"{ROOT}/review/scores"),
        ("https://evil.example/", f"{ROOT}/review/scores"),
        (f"{ROOT}/review/\\evil.example", f"{ROOT}/review/scores"),
        # Dot segments, which a browser resolves (also written %2e), climb out of the pages.
        (f"{ROOT}/review/../../other", f"{ROOT}/review/scores"),
        (f"{ROOT}/review/%2e%2E/%2e./other", f"{ROOT}/review/scores"),
        (f"{ROOT}/review/./scores", f"{ROOT}/review/scores"),
        # An id's encoded "/" keeps "..", inside one segment, from being one.
        (f"{ROOT}/review/people/P-slash%2F..%2FP-other", f"{ROOT}/review/people/P-slash%2F..%2FP-other"),
        (f"{ROOT}/review/scores?person_id=../..", f"{ROOT}/review/scores?person_id=../.."),
    ],
)
def test_sign_in_returns_only_to_pages_under_the_prefix(proxied, target, landing):
    with proxied_client(proxied) as client:
        form_page = client.get(f"{ROOT}/review/sign-in")
        form = {"key": proxied.keys["reviewer"], "csrf": token(form_page.text), "next": target}
        response = client.post(f"{ROOT}/review/sign-in", data=form)
    assert response.status_code == 303 and response.headers["location"] == landing


def test_a_missing_page_under_the_prefix_is_a_page(proxied):
    with proxied_client(proxied) as client:
        post_form(client, client.get(f"{ROOT}/review/sign-in"), {"key": proxied.keys["reviewer"]})
        missing = client.get(f"{ROOT}/review/nowhere")
        bad = client.get(f"{ROOT}/review/scores?page=abc")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert f"There is no page at {ROOT}/review/nowhere." in missing.text
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
