"""The catalogue API through a running stack, HTTP and gRPC, on the embedded and the Redis feature store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio

from services.stack import LocalStack
from tests.e2e.test_stack_e2e import get_json, http_base, start_stack
from wren.core.bundle import Bundle
from wren.v1 import catalogue_pb2, gateway_pb2_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["memory", "redis"])
async def stack(
    request: pytest.FixtureRequest, tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    redis_url = request.getfixturevalue("redis_server").url if request.param == "redis" else ""
    if redis_url:
        with request.getfixturevalue("redis_server").client() as client:
            client.flushall()
    running = await start_stack(
        tiny_artifacts, tmp_path_factory.mktemp(f"catalogue-{request.param}"), 1, {}, redis_url=redis_url
    )
    yield running
    await running.stop()


async def test_item_details(stack: LocalStack, tiny_artifacts: Path) -> None:
    bundle = Bundle(tiny_artifacts)
    async with aiohttp.ClientSession() as session:
        status, body = await get_json(session, f"{http_base(stack)}/v1/items/7")
    assert status == 200
    item = body["item"]
    assert item["title"].startswith("Amélie Poulain") and item["year"] == int(item["title"][-5:-1])
    row = bundle.items.rows([7])[0][0]
    assert item["genres"] == [g for g, on in zip(bundle.genres, bundle.items.genres[row], strict=True) if on]
    assert item["rating_count"] == int(bundle.items.rating_count[row]) > 0
    assert item["rating_mean"] == pytest.approx(bundle.items.rating_mean[row], abs=1e-4)
    assert item["tags"] == bundle.items.tags[row]
    assert item["links"] == {
        "movielens": "https://movielens.org/movies/7",
        "imdb": "https://www.imdb.com/title/tt1000006/",
        "tmdb": "https://www.themoviedb.org/movie/9006",
    }


async def test_search_genres_and_genre_rows(stack: LocalStack, tiny_artifacts: Path) -> None:
    bundle = Bundle(tiny_artifacts)
    base = http_base(stack)
    async with aiohttp.ClientSession() as session:
        status, body = await get_json(session, f"{base}/v1/items", params={"q": "  le MEPRIS ", "k": "3"})
        assert status == 200 and body["query"] == "le MEPRIS" and [i["item_id"] for i in body["items"]] == [12]
        status, body = await get_json(session, f"{base}/v1/items", params={"q": "sequel", "k": "5"})
        counts = [i["rating_count"] for i in body["items"]]
        assert status == 200 and len(counts) == 5 and counts == sorted(counts, reverse=True)
        status, body = await get_json(session, f"{base}/v1/genres")
        assert status == 200 and [g["genre"] for g in body["genres"]] == sorted(bundle.genres)
        assert [g["item_count"] for g in body["genres"]] == [
            int(bundle.items.genres[:, bundle.genres.index(g)].sum()) for g in sorted(bundle.genres)
        ]
        status, body = await get_json(session, f"{base}/v1/genres/dRaMa/items?sort=popularity&k=4")
        assert status == 200 and body["genre"] == "Drama" and body["sort"] == "popularity"
        counts = [i["rating_count"] for i in body["items"]]
        assert len(counts) == 4 and counts == sorted(counts, reverse=True)
        assert all("Drama" in i["genres"] for i in body["items"])
        status, body = await get_json(session, f"{base}/v1/genres/Drama/items?sort=rating")
        assert status == 200 and len(body["items"]) == 10
        assert min(i["rating_count"] for i in body["items"]) > 1


async def test_user_page_shows_ratings_newest_first_and_events_at_once(stack: LocalStack, tiny_artifacts: Path) -> None:
    bundle = Bundle(tiny_artifacts)
    row = 12
    user_id = int(bundle.users.ids[row])
    ids, ratings, _ = bundle.users.history(row)
    url = f"{http_base(stack)}/v1/users/{user_id}"
    async with aiohttp.ClientSession() as session:
        status, body = await get_json(session, url, params={"offset": "2", "limit": "3"})
        assert status == 200 and (body["user_id"], body["offset"], body["limit"]) == (user_id, 2, 3)
        assert body["total"] == len(ids) and body["counters"]["rating_count"] == len(ids)
        assert body["segment"] == bundle.users.segment_names[int(bundle.users.segment[row])]
        assert [(r["item"]["item_id"], r["rating"]) for r in body["ratings"]] == list(
            zip(ids[2:5].tolist(), ratings[2:5].tolist(), strict=True)
        )
        unrated = next(int(i) for i in bundle.items.ids if int(i) not in set(ids.tolist()))
        async with session.post(
            f"{http_base(stack)}/v1/events",
            json={"user_id": user_id, "item_id": unrated, "type": "rating", "rating": 1.5},
        ) as r:
            assert r.status == 200
        status, body = await get_json(session, url, params={"limit": "1"})
        assert status == 200 and body["total"] == len(ids) + 1 and body["counters"]["event_count"] == 1
        assert [(r["item"]["item_id"], r["rating"]) for r in body["ratings"]] == [(unrated, 1.5)]
        assert body["ratings"][0]["item"]["title"]


async def test_bad_input_unknown_ids_and_unknown_routes(stack: LocalStack) -> None:
    base = http_base(stack)
    cases = [
        ("/v1/items/abc", 400, "item_id must be an integer, got 'abc'"),
        ("/v1/items/0", 400, "item_id must be a positive integer id"),
        ("/v1/items/123456", 404, "unknown item 123456"),
        ("/v1/items", 400, "query parameter q is required"),
        ("/v1/items?q=%20", 400, "q must not be empty"),
        ("/v1/items?q=" + "a" * 201, 400, "q must be at most 200 characters"),
        ("/v1/items?q=movie&k=0", 400, "k must be between 1 and 100"),
        ("/v1/items?q=movie&k=x", 400, "k must be an integer"),
        ("/v1/genres/Western/items", 404, "unknown genre 'Western'"),
        ("/v1/genres/Drama/items?sort=newest", 400, "sort must be one of popularity, rating"),
        ("/v1/genres/Drama/items?k=101", 400, "k must be between 1 and 100"),
        ("/v1/users/x", 400, "user_id must be an integer"),
        ("/v1/users/5?offset=-1", 400, "offset must be between 0 and"),
        ("/v1/users/5?limit=0", 400, "limit must be between 1 and 100"),
        ("/v1/users/987654", 404, "unknown user 987654"),
        ("/nowhere", 404, "no such path: /nowhere"),  # "/" is the web app (tests/e2e/test_webapp_browser.py)
        ("/v1/nothing", 404, "no such path: /v1/nothing"),
    ]
    async with aiohttp.ClientSession() as session:
        for path, want_status, message in cases:
            status, body = await get_json(session, base + path)
            assert status == want_status and message in body["error"]["message"], (path, body)
            assert body["error"]["code"] == {400: "INVALID_ARGUMENT", 404: "NOT_FOUND"}[want_status]
        async with session.post(f"{base}/v1/genres") as response:
            body = await response.json()
            assert response.status == 405 and response.headers["Allow"] == "GET"
            assert body["error"] == {
                "code": "UNIMPLEMENTED",
                "message": "POST is not allowed on /v1/genres; allowed: GET",
            }
        async with session.delete(f"{base}/nowhere") as response:  # no route at all: 404 whatever the method
            body = await response.json()
            assert response.status == 404 and body["error"] == {
                "code": "NOT_FOUND",
                "message": "no such path: /nowhere",
            }


async def test_grpc_catalogue(stack: LocalStack, tiny_artifacts: Path) -> None:
    bundle = Bundle(tiny_artifacts)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.gateway.port}") as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        item = await stub.GetItem(catalogue_pb2.GetItemRequest(item_id=10), timeout=5)
        assert item.summary.item_id == 10 and item.links.HasField("imdb") and not item.links.HasField("tmdb")
        found = await stub.SearchItems(catalogue_pb2.SearchItemsRequest(query="amelie"), timeout=5)
        assert [i.item_id for i in found.items] == [7]
        genres = await stub.ListGenres(catalogue_pb2.ListGenresRequest(), timeout=5)
        assert sorted(g.genre for g in genres.genres) == sorted(bundle.genres)
        row = await stub.GenreItems(catalogue_pb2.GenreItemsRequest(genre="comedy"), timeout=5)
        assert row.genre == "Comedy" and row.sort == "popularity" and len(row.items) == 10
        user = await stub.GetUser(catalogue_pb2.GetUserRequest(user_id=int(bundle.users.ids[0])), timeout=5)
        assert user.limit == 20 and len(user.ratings) == min(20, user.total) and user.ratings[0].HasField("rating")
        for call, request, code, message in [
            (stub.GetItem, catalogue_pb2.GetItemRequest(item_id=123456), grpc.StatusCode.NOT_FOUND, "unknown item"),
            (stub.GetItem, catalogue_pb2.GetItemRequest(item_id=-2), grpc.StatusCode.INVALID_ARGUMENT, "item_id"),
            (
                stub.SearchItems,
                catalogue_pb2.SearchItemsRequest(query=""),
                grpc.StatusCode.INVALID_ARGUMENT,
                "q must not be empty",
            ),
            (stub.GenreItems, catalogue_pb2.GenreItemsRequest(genre="x"), grpc.StatusCode.NOT_FOUND, "unknown genre"),
            (
                stub.GenreItems,
                catalogue_pb2.GenreItemsRequest(genre="Drama", sort="x"),
                grpc.StatusCode.INVALID_ARGUMENT,
                "sort must be one of",
            ),
            (stub.GetUser, catalogue_pb2.GetUserRequest(user_id=987654), grpc.StatusCode.NOT_FOUND, "unknown user"),
            (
                stub.GetUser,
                catalogue_pb2.GetUserRequest(user_id=1, limit=1000),
                grpc.StatusCode.INVALID_ARGUMENT,
                "limit must be between 1 and 100",
            ),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call(request, timeout=5)
            assert error.value.code() == code and message in error.value.details()
