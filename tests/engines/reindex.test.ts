/**
 * The operator's reindex (`call search.reindex` in the REPL) rebuilds the
 * Elasticsearch index from the Cassandra store: after a reset, every stored
 * message is searchable again. Runs the real services in one broker.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ServiceBroker } from "moleculer";
import { loadConfig } from "../../config";
import type { Message, SearchHit } from "../../contract";
import { brokerOptions } from "../../moleculer.config";
import { servicesFor } from "../../services";
import { engineEnv, enginesMissing } from "../support/engines";
import { freePort, sleep } from "../support/server";

describe("search.reindex", async () => {
	const missing = await enginesMissing();
	if (missing) {
		it("needs Cassandra and Elasticsearch", { skip: missing }, () => undefined);
		return;
	}
	let broker: ServiceBroker;
	const as = (id: string) => ({ meta: { user: { id, name: id, role: "user" as const, teams: [] } } });
	const search = async (q: string): Promise<SearchHit[]> =>
		(await broker.call<{ hits: SearchHit[] }, { q: string; limit: number }>("search.messages", { q, limit: 50 }, as("ri-seller"))).hits;

	before(async () => {
		const config = loadConfig({ ...engineEnv(), PORT: String(await freePort()), PARLEY_HOST: "127.0.0.1", PARLEY_LOG_LEVEL: "warn" });
		broker = new ServiceBroker({ ...brokerOptions(config), nodeID: "reindex-test" });
		for (const schema of servicesFor(config)) broker.createService(schema);
		await broker.start();
	});
	after(async () => {
		await broker?.stop();
	});

	it("an emptied index is rebuilt from the store, every message once", { timeout: 120_000 }, async () => {
		const conversation = await broker.call<{ id: string }, object>("conversations.open", { listingId: "tent", sellerId: "ri-seller" }, as("ri-buyer"));
		for (let i = 0; i < 25; i++) {
			await broker.call<Message, object>("messages.send", { conversationId: conversation.id, clientMsgId: `ri-${i}`, type: "text", text: `tent pole ${i}` }, as("ri-buyer"));
		}
		let hits: SearchHit[] = [];
		for (const deadline = Date.now() + 20_000; hits.length < 25 && Date.now() < deadline; await sleep(200)) hits = await search("pole");
		assert.equal(hits.length, 25, "indexed through the outbox");

		const result = await broker.call<{ engine: string; messages?: number }>("search.reindex");
		assert.ok((result.messages ?? 0) >= 25, `replayed ${result.messages}`);
		for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(200)) {
			hits = await search("pole");
			if (hits.length === 25) break;
		}
		assert.equal(hits.length, 25);
		assert.equal(new Set(hits.map((h) => h.message.id)).size, 25);
	});
});
