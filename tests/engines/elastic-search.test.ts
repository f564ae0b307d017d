/**
 * ElasticSearchIndex against a real Elasticsearch: the shared SearchIndex
 * behaviour, then what only this engine has (schema checks, loud bulk
 * failures, and surviving an engine restart).
 *
 *   bash scripts/engines.sh start elasticsearch
 *   node --import tsx --test tests/engines/elastic-search.test.ts
 *
 * Without a reachable Elasticsearch this fails in CI (CI=true) and skips, loudly, elsewhere.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { Client } from "@elastic/elasticsearch";
import type { Message } from "../../contract";
import { newMessageId } from "../../lib/ids";
import { ElasticSearchIndex } from "../../lib/search/elastic-search";
import type { IndexableMessage } from "../../lib/search/search-index";
import { searchBehaviour, type MessageDraft } from "../support/search-behaviour";

const NODE = process.env.PARLEY_ELASTICSEARCH_URL ?? "http://127.0.0.1:9200";
const IN_CI = process.env.CI === "true";
const ENGINES_SCRIPT = path.join(__dirname, "../../scripts/engines.sh");
const RUN = `${process.pid}-${Date.now()}`;

/** Why Elasticsearch cannot be used, or null when it answers. */
async function unreachableReason(): Promise<string | null> {
	const client = new Client({ node: NODE, requestTimeout: 3000, maxRetries: 0 });
	try {
		await client.cluster.health({ timeout: "2s" });
		return null;
	} catch (err) {
		return (err as Error).message;
	} finally {
		await client.close();
	}
}

function engines(args: string[], env: Record<string, string> = {}): Promise<{ stdout: string }> {
	return promisify(execFile)("bash", [ENGINES_SCRIPT, ...args], { env: { ...process.env, ...env }, timeout: 240_000 });
}

/** Turns drafts into messages the way the store would (per-conversation seq), with their members. */
function messagesFrom(drafts: MessageDraft[], seqs: Map<string, number>): IndexableMessage[] {
	return drafts.map((d) => {
		const seq = (seqs.get(d.conversationId) ?? 0) + 1;
		seqs.set(d.conversationId, seq);
		const message: Message = {
			id: newMessageId(), conversationId: d.conversationId, seq, senderId: d.senderId, clientMsgId: randomUUID(),
			type: "text", text: d.text, attachments: [], createdAt: new Date().toISOString(),
		};
		return { message, memberIds: [d.buyerId, d.sellerId] };
	});
}

const withMembers = (messages: Message[]): IndexableMessage[] => messages.map((message) => ({ message, memberIds: [] }));

async function dropIndex(index: string): Promise<void> {
	const client = new Client({ node: NODE });
	await client.indices.delete({ index }, { ignore: [404] });
	await client.close();
}

describe("Elasticsearch search", async () => {
	const reason = await unreachableReason();
	if (reason) {
		if (IN_CI) {
			it("Elasticsearch is reachable (required in CI)", () => assert.fail(`Elasticsearch at ${NODE} is unreachable: ${reason}`));
			return;
		}
		console.error(`\n${"!".repeat(78)}\n!! SKIPPING the Elasticsearch tests: ${NODE} is unreachable (${reason}).\n!! Start it with: bash scripts/engines.sh start elasticsearch\n${"!".repeat(78)}\n`);
		it("Elasticsearch search", { skip: `Elasticsearch at ${NODE} is unreachable` }, () => {});
		return;
	}

	searchBehaviour("elasticsearch", async () => {
		const index = `parley-test-search-${RUN}`;
		const search = new ElasticSearchIndex({ node: NODE, index });
		await search.open();
		const seqs = new Map<string, number>();
		return {
			search,
			async add(drafts) {
				const docs = messagesFrom(drafts, seqs);
				await search.index(docs);
				return docs.map((d) => d.message);
			},
			reindex: (messages) => search.index(withMembers(messages)),
			remove: (ids) => search.remove(ids),
			async close() {
				await search.close();
				await dropIndex(index);
			},
		};
	}, { fed: true });

	describe("Elasticsearch engine", () => {
		const index = `parley-test-engine-${RUN}`;
		const search = new ElasticSearchIndex({ node: NODE, index });
		const seqs = new Map<string, number>();
		const conversation = (...texts: string[]): IndexableMessage[] => {
			const id = `c_engine_${randomUUID()}`;
			return messagesFrom(texts.map((text) => ({ conversationId: id, buyerId: "b", sellerId: "s", senderId: "b", text })), seqs);
		};

		before(() => search.open());
		after(async () => {
			await search.close();
			await dropIndex(index);
		});

		it("open() is idempotent; an index of an older schema is refused, or made anew with onOldSchema: rebuild; a newer one always refused", async () => {
			await search.open();
			const other = `parley-test-old-schema-${RUN}`;
			const client = new Client({ node: NODE });
			// Schema 1: the mapping before edits and deletes (no changeSeq).
			await client.indices.create({ index: other, settings: { number_of_replicas: 0 }, mappings: { _meta: { schemaVersion: 1 }, properties: { text: { type: "text" } } } });
			await client.index({ index: other, id: "m-old", document: { text: "from the old build" }, refresh: true });
			try {
				const refusing = new ElasticSearchIndex({ node: NODE, index: other });
				await assert.rejects(refusing.open(), /older schema, this code needs \d+: reindex it/);
				await refusing.close();
				const rebuilding = new ElasticSearchIndex({ node: NODE, index: other, onOldSchema: "rebuild", refresh: true });
				await rebuilding.open();
				assert.equal(rebuilding.rebuilt, true);
				assert.equal((await client.count({ index: other })).count, 0, "made anew, empty, for the replay");
				const [doc] = conversation("indexed after the upgrade");
				await rebuilding.index([doc!]);
				assert.equal((await rebuilding.search({ text: "upgrade", conversationIds: [doc!.message.conversationId], limit: 5 })).length, 1);
				await rebuilding.close();
				await client.indices.putMapping({ index: other, _meta: { schemaVersion: 99 } });
				await assert.rejects(new ElasticSearchIndex({ node: NODE, index: other, onOldSchema: "rebuild" }).open(), /schema 99, newer than this code's/);
			} finally {
				await client.indices.delete({ index: other });
				await client.close();
			}
		});

		it("edits and deletes arrive in any order, more than once: the highest change number wins, and a deleted message stays unfound", async () => {
			const [doc] = conversation("meet at the harbour");
			const scope = [doc!.message.conversationId];
			const version = (text: string, changeSeq: number, deleted = false): IndexableMessage => ({
				...doc!,
				message: { ...doc!.message, text: deleted ? "" : text, changeSeq, ...(deleted ? { deletedAt: new Date().toISOString() } : { editedAt: new Date().toISOString() }) },
			});
			const found = async (word: string) => (await search.search({ text: word, conversationIds: scope, limit: 5 })).map((h) => h.message.text);
			await search.index([doc!]);
			await search.index([version("meet at the station", 2)]);
			await search.index([version("meet at the bridge", 1), doc!]); // late and redelivered older versions
			assert.deepEqual(await found("station"), ["meet at the station"]);
			assert.deepEqual([await found("bridge"), await found("harbour")], [[], []]);
			await search.index([version("", 3, true)]);
			await search.index([version("meet at the station", 2), doc!]);
			assert.deepEqual([await found("station"), await found("meet")], [[], []], "a delete is final");
		});

		it("ranks equal matches newest first", async () => {
			const docs = conversation("bike for sale", "bike for sale", "bike for sale");
			docs.forEach((d, i) => (d.message.createdAt = new Date(Date.UTC(2026, 0, 1 + i)).toISOString()));
			await search.index([docs[1]!, docs[0]!, docs[2]!]);
			const hits = await search.search({ text: "bike", conversationIds: [docs[0]!.message.conversationId], limit: 10 });
			assert.deepEqual(hits.map((h) => h.message.seq), [3, 2, 1]);
		});

		it("folds in the application what asciifolding would: strokes, ß, ligatures, full-width; not other scripts' marks", async () => {
			const docs = conversation("Łódź station", "Große Straße", "ﬁsh market", "ｆｕｌｌ price", "नमस्ते दोस्त");
			const find = async (text: string) => (await search.search({ text, conversationIds: [docs[0]!.message.conversationId], limit: 10 })).map((h) => h.highlight);
			await search.index(docs);
			assert.deepEqual(await find("lodz"), ["<mark>Łódź</mark> station"]);
			assert.deepEqual(await find("strasse"), ["Große <mark>Straße</mark>"]);
			assert.deepEqual(await find("fish"), ["<mark>ﬁsh</mark> market"]);
			assert.deepEqual(await find("full"), ["<mark>ｆｕｌｌ</mark> price"]);
			assert.deepEqual(await find("नमस्ते"), ["<mark>नमस्ते</mark> दोस्त"]);
			assert.deepEqual(await find("नमसत"), [], "Devanagari vowel signs are spelling, not accents");
		});

		it("index() rejects when any message of the batch is refused", async () => {
			const [good, bad] = conversation("good one", "bad one");
			bad!.message.createdAt = "not a date";
			await assert.rejects(search.index([good!, bad!]), /1 of 2 failed/);
		});

		it("reset() leaves an empty index with the current mapping", async () => {
			const docs = conversation("soon gone");
			await search.index(docs);
			await search.reset();
			assert.deepEqual(await search.search({ text: "gone", conversationIds: [docs[0]!.message.conversationId], limit: 10 }), []);
			await search.index(docs);
			assert.equal((await search.search({ text: "gone", conversationIds: [docs[0]!.message.conversationId], limit: 10 })).length, 1);
		});

		it("Elasticsearch stopped, messages indexed after it returns are all searchable", { timeout: 300_000 }, async (t) => {
			const status = (await engines(["status"])).stdout;
			if (!/elasticsearch\s+running/.test(status)) {
				return t.skip("this Elasticsearch is not managed by scripts/engines.sh, so the test cannot stop it");
			}
			const beforeOutage = conversation(...Array.from({ length: 10 }, (_, i) => `before the outage ${i}`));
			const duringOutage = conversation(...Array.from({ length: 10 }, (_, i) => `during the outage ${i}`));
			const conversationIds = [beforeOutage[0]!.message.conversationId, duringOutage[0]!.message.conversationId];
			await search.index(beforeOutage);

			await engines(["stop", "elasticsearch"]);
			let stopped = true;
			try {
				// The indexer's outbox keeps entries whose index() rejected; it must reject, and promptly.
				const started = Date.now();
				await assert.rejects(search.index(duringOutage));
				assert.ok(Date.now() - started < 10_000, "index() fails fast while Elasticsearch is down");
				await assert.rejects(search.search({ text: "outage", conversationIds, limit: 100 }));

				await engines(["start", "elasticsearch"], { KEEP_DATA: "1" });
				stopped = false;
				// The retry, twice over as an at-least-once indexer may do it.
				await search.index(duringOutage);
				await search.index(duringOutage);
			} finally {
				if (stopped) await engines(["start", "elasticsearch"], { KEEP_DATA: "1" });
			}

			const hits = await search.search({ text: "outage", conversationIds, limit: 100 });
			const expected = [...beforeOutage, ...duringOutage].map((d) => d.message.id).sort();
			assert.deepEqual(hits.map((h) => h.message.id).sort(), expected, "every message once, none lost, none duplicated");
		});
	});
});
