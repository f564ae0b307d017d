/**
 * Search indexing is durable: with Elasticsearch down, messages are still sent
 * and acked (the store keeps them and their outbox entries); when it returns,
 * every one of them becomes searchable, each exactly once.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { engineEnv, engineScript, enginesMissing } from "../support/engines";
import { RawClient, devToken, expectError, sleep, startServer, type ServerHandle } from "../support/server";

describe("search outage", async () => {
	const missing = await enginesMissing();
	if (missing) {
		it("needs Cassandra and Elasticsearch", { skip: missing }, () => undefined);
		return;
	}
	let server: ServerHandle;
	before(async () => {
		server = await startServer(engineEnv());
	});
	after(async () => {
		await server?.stop();
	});

	it("Elasticsearch stopped, messages sent, restarted: all become searchable", { timeout: 180_000 }, async () => {
		const buyer = await RawClient.connect(server.url, await devToken(server.url, "outage-buyer"), "b");
		const seller = await RawClient.connect(server.url, await devToken(server.url, "outage-seller"), "s");
		try {
			const { id } = await buyer.call("conversations.open", { listingId: "kayak", sellerId: "outage-seller" });
			engineScript("stop", "elasticsearch");
			for (let i = 0; i < 20; i++) {
				await buyer.call("messages.send", { conversationId: id, clientMsgId: `k${i}`, type: "text", text: `kayak paddle number ${i}` });
			}
			await expectError(seller.call("search.messages", { q: "paddle" }), "UNAVAILABLE", 503);
			engineScript("start", "elasticsearch");
			let hits: unknown[] = [];
			for (const deadline = Date.now() + 60_000; hits.length < 20 && Date.now() < deadline; await sleep(500)) {
				hits = await seller
					.call("search.messages", { q: "paddle", limit: 50 })
					.then((r) => r.hits)
					.catch(() => []);
			}
			assert.equal(hits.length, 20, "every message sent during the outage is searchable, once");
		} finally {
			buyer.close();
			seller.close();
		}
	});
});
