"""Shared helpers of the SDK scenario scripts: every script talks to the emulator named by
DATABRICKS_HOST / DATABRICKS_TOKEN (set by tests/sdk.rs) through the official SDK."""
import sys
import time


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def expect_error(exc_type, fn, *args, **kwargs):
    """Call fn and require that the SDK raises exc_type (a databricks.sdk.errors class)."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    except Exception as e:  # noqa: BLE001 - report the wrong class precisely
        raise AssertionError(f"expected {exc_type.__name__}, got {type(e).__name__}: {e}")
    raise AssertionError(f"expected {exc_type.__name__}, the call succeeded")


def wait_until(fn, what, timeout=30.0):
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def run(*scenarios):
    """Run each scenario; print one line per result; exit 1 if any failed."""
    failed = 0
    for s in scenarios:
        started = time.time()
        try:
            s()
            print(f"PASS {s.__name__} ({time.time() - started:.1f}s)")
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAIL {s.__name__}: {type(e).__name__}: {e}")
    sys.exit(1 if failed else 0)
