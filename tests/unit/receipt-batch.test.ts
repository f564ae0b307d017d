/**
 * Receipts reach the store at most once per member and conversation per flush
 * (design target T7): the coalescing rule alone, then through the receipts
 * service in a broker with no transporter, counting the store's writes.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it, mock } from "node:test";
import { ServiceBroker } from "moleculer";
import { loadConfig } from "../../config";
import type { Message, Watermarks } from "../../contract";
import { coalesceMarks } from "../../lib/receipt-batch";
import type { WatermarkUpdate } from "../../lib/store/chat-store";
import { SqliteStore } from "../../lib/store/sqlite-store";
import { brokerOptions } from "../../moleculer.config";
import { servicesFor } from "../../services";
import { freePort } from "../support/server";

const mark = (conversationId: string, userId: string, delivered: number, read = 0): WatermarkUpdate => ({ conversationId, userId, delivered, read });

describe("coalescing receipt marks", () => {
	it("many marks by one member in one conversation become one write with the highest delivered and read", () => {
		const marks = [mark("c1", "u1", 3), mark("c1", "u1", 9, 2), mark("c1", "u1", 5, 5), mark("c1", "u1", 7), mark("c1", "u1", 1, 1)];
		const { writes, answeredBy } = coalesceMarks(marks);
		assert.deepEqual(writes, [mark("c1", "u1", 9, 5)]);
		assert.deepEqual(answeredBy, [0, 0, 0, 0, 0]);
	});

	it("marks of different members or conversations are written apart, each with its own highest marks", () => {
		const { writes } = coalesceMarks([mark("c1", "u1", 4, 4), mark("c1", "u2", 6), mark("c2", "u1", 2, 1), mark("c1", "u2", 3, 3), mark("c1", "u1", 1)]);
		assert.deepEqual(writes, [mark("c1", "u1", 4, 4), mark("c1", "u2", 6, 3), mark("c2", "u1", 2, 1)]);
	});

	it("every mark is answered by its own key's write, in the order the marks came", () => {
		const marks = [mark("c2", "u1", 1), mark("c1", "u1", 1), mark("c2", "u1", 2), mark("c1", "u2", 1), mark("c1", "u1", 3)];
		const { writes, answeredBy } = coalesceMarks(marks);
		assert.equal(answeredBy.length, marks.length);
		marks.forEach((m, i) => {
			const w = writes[answeredBy[i]!]!;
			assert.deepEqual([w.conversationId, w.userId], [m.conversationId, m.userId], `mark ${i} is answered by its own key`);
		});
	});

	it("leaves the callers' marks as they were", () => {
		const marks = [mark("c1", "u1", 2), mark("c1", "u1", 8, 8)];
		coalesceMarks(marks);
		assert.deepEqual(marks, [mark("c1", "u1", 2), mark("c1", "u1", 8, 8)]);
	});
});

describe("receipts service: a burst of marks", () => {
	let broker: ServiceBroker;
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-receipts-"));
	const as = (id: string) => ({ meta: { user: { id, name: id, role: "user" as const, teams: [] } } });

	before(async () => {
		// A flush window far longer than the burst takes to arrive, so the burst is one flush.
		const config = loadConfig({ PORT: String(await freePort()), PARLEY_HOST: "127.0.0.1", PARLEY_LOG_LEVEL: "error", PARLEY_DATA_DIR: dataDir, PARLEY_RECEIPT_FLUSH_MS: "200" });
		broker = new ServiceBroker({ ...brokerOptions(config), nodeID: "receipts-test" });
		for (const schema of servicesFor(config)) broker.createService(schema);
		await broker.start();
	});

	after(async () => {
		mock.restoreAll();
		await broker?.stop();
		fs.rmSync(dataDir, { recursive: true, force: true });
	});

	it("40 marks by one member at once are one store write, and every caller is told the highest marks", async () => {
		const { id: conversationId } = await broker.call<{ id: string }, object>("conversations.open", { listingId: "lamp", sellerId: "rb-seller" }, as("rb-buyer"));
		for (let i = 1; i <= 10; i++) {
			await broker.call<Message, object>("messages.send", { conversationId, clientMsgId: `rb-${i}`, type: "text", text: `lamp ${i}` }, as("rb-buyer"));
		}
		const saves = mock.method(SqliteStore.prototype, "saveWatermarks");
		const marks = Array.from({ length: 40 }, (_, i) => ({ conversationId, seq: ((i * 7) % 10) + 1, state: i % 3 === 0 ? ("read" as const) : ("delivered" as const) }));
		const answers = await Promise.all(marks.map((m) => broker.call<Watermarks, object>("receipts.mark", m, as("rb-seller"))));

		const highest = { delivered: Math.max(...marks.map((m) => m.seq)), read: Math.max(...marks.filter((m) => m.state === "read").map((m) => m.seq)) };
		for (const answer of answers) assert.deepEqual(answer, highest);

		const flushes = saves.mock.calls.map((c) => c.arguments[0]);
		for (const updates of flushes) {
			const keys = updates.map((u) => `${u.conversationId}/${u.userId}`);
			assert.equal(new Set(keys).size, keys.length, "a flush writes each member and conversation once");
		}
		const sellerWrites = flushes.flat().filter((u) => u.conversationId === conversationId && u.userId === "rb-seller");
		assert.deepEqual(sellerWrites, [{ conversationId, userId: "rb-seller", ...highest }]);
	});
});
