"""CredentialStore: one read per container, a maximum age, and a 401-driven refresh that reads once."""

from __future__ import annotations

import threading

import pytest

from signal_freshdesk.core.credentials import CredentialStore
from signal_freshdesk.core.errors import ConfigError, SecretUnavailable

MAX_AGE = 300.0


class CallableSource:
    """A SecretSource around a plain function, as these tests write their readers."""

    def __init__(self, read) -> None:
        self.read = read

    def read_secret(self, *, force: bool = False):
        return self.read()


class FakeClock:
    # time.monotonic() may be close to zero in a fresh container: start there.
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Reader:
    """A secret reader that counts its calls and hands out a fresh api key each time (a rotation)."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self) -> dict:
        with self.lock:
            self.calls += 1
            n = self.calls
        return {"domain": "acme", "api_key": f"key-{n}", "webhook_token": "token-0123456789abcdef"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def reader() -> Reader:
    return Reader()


@pytest.fixture
def store(reader: Reader, clock: FakeClock) -> CredentialStore:
    return CredentialStore(CallableSource(reader), max_age=MAX_AGE, clock=clock)


def test_store_does_not_read_until_asked(reader, store):
    assert reader.calls == 0


def test_store_reads_once_and_caches(reader, store):
    first = store.get()
    second = store.get()
    third = store.get()
    assert reader.calls == 1
    assert first is second is third
    assert first.api_key == "key-1"
    assert first.domain == "acme"


def test_store_keeps_cache_within_max_age(reader, store, clock):
    first = store.get()
    clock.advance(MAX_AGE - 1)
    assert store.get() is first
    assert reader.calls == 1


def test_store_re_reads_after_max_age(reader, store, clock):
    first = store.get()
    clock.advance(MAX_AGE + 1)
    second = store.get()
    assert reader.calls == 2
    assert second is not first
    assert second.api_key == "key-2"
    # and the new value is cached again from the time it was read
    clock.advance(MAX_AGE - 1)
    assert store.get() is second
    assert reader.calls == 2


def test_refresh_with_the_stale_object_re_reads(reader, store):
    stale = store.get()
    fresh = store.refresh(stale)
    assert reader.calls == 2
    assert fresh is not stale
    assert fresh.api_key == "key-2"
    assert store.get() is fresh


def test_refresh_twice_with_the_same_stale_object_re_reads_once(reader, store):
    stale = store.get()
    first = store.refresh(stale)
    second = store.refresh(stale)
    assert reader.calls == 2
    assert first is second


def test_refresh_with_an_already_replaced_object_does_not_re_read(reader, store, clock):
    old = store.get()
    clock.advance(MAX_AGE + 1)
    current = store.get()  # replaced by age
    assert reader.calls == 2
    assert store.refresh(old) is current
    assert reader.calls == 2


def test_refresh_on_an_empty_store_reads(reader, store):
    old = CredentialStore(CallableSource(Reader()), clock=FakeClock()).get()
    creds = store.refresh(old)
    assert reader.calls == 1
    assert creds.api_key == "key-1"


def test_refresh_from_many_threads_with_the_same_stale_object_reads_once(reader, store):
    stale = store.get()
    barrier = threading.Barrier(8)
    results = []

    def worker():
        barrier.wait()
        results.append(store.refresh(stale))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert reader.calls == 2
    assert len(results) == 8
    assert all(result is results[0] for result in results)


def test_reader_raising_propagates(clock):
    def failing():
        raise SecretUnavailable("the secret could not be read")

    store = CredentialStore(CallableSource(failing), clock=clock)
    with pytest.raises(SecretUnavailable):
        store.get()


def test_reader_raising_on_refresh_propagates(clock):
    calls = {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] > 1:
            raise SecretUnavailable("throttled")
        return {"domain": "acme", "api_key": "key", "webhook_token": "token-0123456789abcdef"}

    store = CredentialStore(CallableSource(flaky), clock=clock)
    stale = store.get()
    with pytest.raises(SecretUnavailable):
        store.refresh(stale)


def test_a_failed_read_is_not_cached(clock):
    outcomes = [RuntimeError("boom"), {"domain": "acme", "api_key": "key", "webhook_token": "token-0123456789abcdef"}]

    def reader():
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    store = CredentialStore(CallableSource(reader), clock=clock)
    with pytest.raises(RuntimeError, match="boom"):
        store.get()
    assert store.get().api_key == "key"


def test_an_invalid_secret_raises_config_error(clock):
    store = CredentialStore(
        CallableSource(lambda: {"domain": "acme.evil.com", "api_key": "k", "webhook_token": "t" * 16}), clock=clock
    )
    with pytest.raises(ConfigError):
        store.get()
