"""An async function: ask three suppliers for a price side by side and keep the cheapest."""

from __future__ import annotations

import asyncio
import zlib

import inngest_django as inngest

from .inngest_functions import client

# Each stand-in supplier answers after this many seconds, as a slow HTTP API would.
SUPPLIERS = {"acme": 0.4, "globex": 0.6, "initech": 0.3}


async def fetch_quote(supplier: str, sku: str, quantity: int) -> dict:
    """Pretend to call a supplier's pricing API: no network, just its latency and a price."""
    await asyncio.sleep(SUPPLIERS[supplier])
    # A stable made-up unit price per supplier and SKU, between 900 and 1399 cents.
    unit = 900 + zlib.crc32(f"{supplier}:{sku}".encode()) % 500
    return {"supplier": supplier, "unit_cents": unit, "total_cents": unit * quantity}


@client.create_function(
    fn_id="compare-supplier-prices",
    trigger=inngest.TriggerEvent(event="shop/prices.compare"),
)
async def compare_supplier_prices(ctx: inngest.Context) -> dict:
    """Ask every supplier at once (one async step each), then pick the cheapest in a step.

    The quotes are awaited side by side on the worker's event loop, so the run takes about as
    long as the slowest supplier, not the sum; each quote is memoized on its own, so a retry
    asks only the suppliers that failed.
    """
    sku = str(ctx.event.data.get("sku", "MUG"))
    quantity = int(ctx.event.data.get("quantity", 1))
    quotes = await ctx.group.parallel(
        [
            lambda supplier=supplier: ctx.step.run(
                f"quote-{supplier}", fetch_quote, supplier, sku, quantity
            )
            for supplier in SUPPLIERS
        ]
    )
    best = await ctx.step.run("pick-cheapest", lambda: min(quotes, key=lambda q: q["total_cents"]))
    return {"sku": sku, "quantity": quantity, "quotes": list(quotes), "best": best}
