/**
 * The operator's reindex (`call search.reindex` in the REPL) rebuilds the
 * Elasticsearch index from the Cassandra store: after it, the index holds every
 * stored message once and nothing else. Runs the real services in one broker.
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

	it("a rebuilt index holds exactly the stored messages: a stray document is gone, every message is found once", { timeout: 120_000 }, async () => {
		const conversation = await broker.call<{ id: string }, object>("conversations.open", { listingId: "tent", sellerId: "ri-seller" }, as("ri-buyer"));
		const stored: Message[] = [];
		for (let i = 0; i < 25; i++) {
			stored.push(
				await broker.call<Message, object>("messages.send", { conversationId: conversation.id, clientMsgId: `ri-${i}`, type: "text", text: `tent pole ${i}` }, as("ri-buyer")),
			);
		}
		// A document the store never held (a message removed since, or an index written by other code):
		// only a real reset of the index can make it disappear, since replaying the store never touches it.
		const stray: Message = { ...stored[0]!, id: "m_stray_reindex_test", seq: 1000, clientMsgId: "ri-stray", text: "tent pole stray" };
		await broker.call("search.index", { messages: [stray] });
		let hits: SearchHit[] = [];
		for (const deadline = Date.now() + 20_000; hits.length < 26 && Date.now() < deadline; await sleep(200)) hits = await search("pole");
		assert.equal(hits.length, 26, "the 25 messages indexed through the outbox, and the stray document");
		assert.ok(hits.some((h) => h.message.id === stray.id));

		const result = await broker.call<{ engine: string; messages?: number }>("search.reindex");
		assert.equal(result.messages, 25, "every stored message replayed once");
		for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(200)) {
			hits = await search("pole");
			if (hits.length === 25 && !hits.some((h) => h.message.id === stray.id)) break;
		}
		assert.ok(!hits.some((h) => h.message.id === stray.id), "the stray document went with the reset");
		assert.deepEqual(hits.map((h) => h.message.id).sort(), stored.map((m) => m.id).sort());
	});
});
