/**
 * Nothing acked is lost, nothing written offline is lost or doubled, and a
 * device that was away catches up exactly: server restarts (including kill -9),
 * client restarts, long offline gaps.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ParleyClient } from "../../client";
import type { Message } from "../../contract";
import { RawClient, devToken, sleep, startServer, storedHistory, syncPages, until, type ServerHandle } from "./server";

export function durabilitySuite(engines: string, env: Record<string, string> = {}): void {
describe(`durability and catch-up (${engines})`, () => {
	let server: ServerHandle;
	let buyerToken: string, sellerToken: string;
	const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "parley-client-"));

	before(async () => {
		server = await startServer({ PARLEY_CALLS_PER_SECOND: "10000", PARLEY_CALL_BURST: "10000", ...env });
		[buyerToken, sellerToken] = await Promise.all([devToken(server.url, "buyer"), devToken(server.url, "seller")]);
	});

	after(async () => {
		await server?.stop();
	});

	const openConversation = async (listingId: string) => {
		const buyer = await RawClient.connect(server.url, buyerToken, "setup");
		try {
			return (await buyer.call("conversations.open", { listingId, sellerId: "seller" })).id as string;
		} finally {
			buyer.close();
		}
	};

	it("a device offline during 500 messages catches up exactly: no gap, no repeat", async () => {
		const conversationId = await openConversation("offline-500");
		const syncLimit = 120;
		const device = new ParleyClient({ url: server.url, token: sellerToken, deviceId: "seller-tablet", syncLimit, autoDelivered: false });
		const seen: Message[] = [];
		device.on("message", (m) => m.conversationId === conversationId && seen.push(m));
		await device.connect();
		const buyer = await RawClient.connect(server.url, buyerToken, "buyer-phone");
		const rawSeller = await RawClient.connect(server.url, sellerToken, "seller-raw");
		try {
			for (let i = 1; i <= 5; i++) await buyer.call("messages.send", { conversationId, clientMsgId: `pre-${i}`, type: "text", text: `before ${i}` });
			await until("the first five live", () => seen.length === 5);

			device.socket.disconnect();
			await Promise.all(
				Array.from({ length: 500 }, (_, i) => buyer.call("messages.send", { conversationId, clientMsgId: `off-${i}`, type: "text", text: `while away ${i}` })),
			);
			device.socket.connect();
			await until("505 messages", () => seen.length >= 505);
			await sleep(200);
			assert.deepEqual(seen.map((m) => m.seq), Array.from({ length: 505 }, (_, i) => i + 1));
			assert.equal(new Set(seen.map((m) => m.id)).size, 505);
			assert.equal(device.cursors()[conversationId], 505);

			// The SDK drops anything at or below its cursor, so the server's own pages are checked
			// raw: the same catch-up, page by page, must hold 6..505 exactly once, in order.
			const pages = await syncPages(rawSeller, { [conversationId]: 5 }, syncLimit);
			assert.ok(pages.length > 1, `the catch-up took several pages (${pages.length})`);
			const raw = pages.flat().filter((m) => m.conversationId === conversationId);
			assert.deepEqual(raw.map((m) => m.seq), Array.from({ length: 500 }, (_, i) => i + 6));
		} finally {
			buyer.close();
			rawSeller.close();
			device.close();
		}
	});

	it("a new device receives conversations it has never seen, from the first message", async () => {
		const conversationId = await openConversation("fresh-device");
		const buyer = await RawClient.connect(server.url, buyerToken, "buyer-2");
		try {
			for (let i = 1; i <= 3; i++) await buyer.call("messages.send", { conversationId, clientMsgId: `fresh-${i}`, type: "text", text: `hello ${i}` });
		} finally {
			buyer.close();
		}
		const device = new ParleyClient({ url: server.url, token: sellerToken, deviceId: "brand-new", autoDelivered: false });
		const seen: Message[] = [];
		const conversations: string[] = [];
		device.on("message", (m) => m.conversationId === conversationId && seen.push(m));
		device.on("conversation", (c) => conversations.push(c.id));
		try {
			await device.connect();
			assert.deepEqual(seen.map((m) => m.text), ["hello 1", "hello 2", "hello 3"]);
			assert.ok(conversations.includes(conversationId));
		} finally {
			device.close();
		}
	});

	it("a stop (even kill -9) and restart of the server loses no acked message", async () => {
		const conversationId = await openConversation("crash");
		const buyer = await RawClient.connect(server.url, buyerToken, "crash-phone");
		const acked: Message[] = [];
		let refused = 0;
		let stopSending = false;
		const sending = (async () => {
			for (let i = 0; refused === 0 && !stopSending; i++) {
				// Ten in flight at a time, so the crash lands inside group commits. Every ack counts,
				// including those of the ten the kill cut short: an ack sent before its commit is
				// most likely to be one of them.
				const batch = await Promise.allSettled(
					Array.from({ length: 10 }, (_, j) =>
						buyer.call("messages.send", { conversationId, clientMsgId: `crash-${i}-${j}`, type: "text", text: `n ${i}.${j}` }),
					),
				);
				for (const r of batch) {
					if (r.status === "fulfilled") acked.push(r.value);
					else refused++;
				}
			}
		})();
		await until("some acks", () => acked.length >= 300);
		await server.stop("SIGKILL");
		stopSending = true;
		await sending;
		buyer.close();

		await server.restart();
		const reader = await RawClient.connect(server.url, sellerToken, "reader");
		try {
			const stored = await storedHistory(reader, conversationId);
			const storedIds = new Set(stored.map((m) => m.id));
			const lost = acked.filter((m) => !storedIds.has(m.id));
			assert.equal(lost.length, 0, `${lost.length} of ${acked.length} acked messages were lost`);
			assert.deepEqual(stored.map((m) => m.seq), Array.from({ length: stored.length }, (_, i) => i + 1), "seq stays dense");
			assert.equal(new Set(stored.map((m) => m.clientMsgId)).size, stored.length, "no duplicates");
		} finally {
			reader.close();
		}
	});

	it("a drained server (SIGTERM) sends its clients away; they reconnect on their own and catch up", async () => {
		const conversationId = await openConversation("drain");
		const device = new ParleyClient({ url: server.url, token: sellerToken, deviceId: "drain-tablet", reconnectDelayMs: 100, reconnectDelayMaxMs: 300, autoDelivered: false });
		const seen: Message[] = [];
		const drained: unknown[] = [];
		device.on("message", (m) => m.conversationId === conversationId && seen.push(m));
		device.socket.on("server.draining", (d: unknown) => drained.push(d));
		await device.connect();
		try {
			await server.stop("SIGTERM");
			assert.equal(drained.length, 1, "the client was told the server is draining");
			await server.restart();
			const buyer = await RawClient.connect(server.url, buyerToken, "drain-buyer");
			await buyer.call("messages.send", { conversationId, clientMsgId: "after-drain", type: "text", text: "are you back?" });
			buyer.close();
			await until("reconnect and catch-up", () => seen.length === 1);
			assert.equal(seen[0]?.text, "are you back?");
			assert.equal(device.connected, true);
		} finally {
			device.close();
		}
	});

	it("messages written through the client while the server is down arrive exactly once after it returns, even across a client restart", async () => {
		const conversationId = await openConversation("outbox");
		const storagePath = path.join(tmp, "buyer-phone.json");
		const first = new ParleyClient({ url: server.url, token: buyerToken, deviceId: "outbox-phone", storagePath, reconnectDelayMs: 100, reconnectDelayMaxMs: 300 });
		await first.connect();
		await server.stop();

		const early = [first.send(conversationId, "written offline 1"), first.send(conversationId, "written offline 2")];
		early.forEach((p) => p.catch(() => undefined));
		await sleep(100);
		assert.equal(first.pending().length, 2);
		// The app is killed before the server returns; its outbox is on disk.
		first.close();

		const second = new ParleyClient({ url: server.url, token: buyerToken, deviceId: "outbox-phone", storagePath, reconnectDelayMs: 100, reconnectDelayMaxMs: 300 });
		assert.equal(second.pending().length, 2);
		const third = second.send(conversationId, "written offline 3");
		const connecting = second.connect();
		await sleep(300);
		await server.restart();
		await connecting;
		const last = await third;
		assert.equal(last.text, "written offline 3");
		await until("outbox drained", () => second.pending().length === 0);

		const reader = await RawClient.connect(server.url, sellerToken, "outbox-reader");
		try {
			const history = await reader.call("messages.history", { conversationId });
			assert.deepEqual(history.map((m: Message) => m.text), ["written offline 1", "written offline 2", "written offline 3"]);
		} finally {
			reader.close();
			second.close();
		}
	});
});
}
