/** The client SDK keeps what the server refused for good: the user's text is never silently lost. */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ParleyClient } from "../../client";
import { RawClient, devToken, startServer, type ServerHandle } from "../support/server";

describe("client SDK outbox", () => {
	let server: ServerHandle;
	before(async () => {
		server = await startServer();
	});
	after(async () => {
		await server?.stop();
	});

	it("a message refused for good stays in failed(), across a restart, until retried or discarded", async () => {
		const owner = await RawClient.connect(server.url, await devToken(server.url, "fo-buyer"), "d");
		const { id: theirs } = await owner.call("conversations.open", { listingId: "fo-1", sellerId: "fo-seller" });
		owner.close();
		const storagePath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "parley-client-")), "state.json");
		const token = await devToken(server.url, "fo-stranger");
		const client = new ParleyClient({ url: server.url, token, deviceId: "phone", storagePath });
		await client.connect();
		await assert.rejects(client.send(theirs, "let me in", "fo-msg-1"), (e: { type: string }) => e.type === "FORBIDDEN");
		assert.deepEqual(client.pending(), []);
		assert.deepEqual(client.failed().map((f) => [f.clientMsgId, f.text, f.error.type]), [["fo-msg-1", "let me in", "FORBIDDEN"]]);
		client.close();

		const again = new ParleyClient({ url: server.url, token, deviceId: "phone", storagePath });
		await again.connect();
		try {
			assert.deepEqual(again.failed().map((f) => f.clientMsgId), ["fo-msg-1"], "kept on disk");
			await assert.rejects(again.retryFailed("fo-msg-1"), (e: { type: string }) => e.type === "FORBIDDEN");
			assert.deepEqual(again.failed().map((f) => f.clientMsgId), ["fo-msg-1"], "refused again: still there, once");
			again.discardFailed("fo-msg-1");
			assert.deepEqual(again.failed(), []);
		} finally {
			again.close();
		}
	});

	it("edits reach the SDK live and, after time offline, through its catch-up: each final state once", async () => {
		const sellerToken = await devToken(server.url, "ed-seller");
		const seller = await RawClient.connect(server.url, sellerToken, "desk");
		const buyer = new ParleyClient({ url: server.url, token: await devToken(server.url, "ed-buyer"), deviceId: "phone" });
		const updates: { seq: number; text: string; changeSeq?: number }[] = [];
		buyer.on("updated", (m) => updates.push({ seq: m.seq, text: m.text, changeSeq: m.changeSeq }));
		await buyer.connect();
		try {
			const { id: conversationId } = await buyer.call("conversations.open", { listingId: "ed-1", sellerId: "ed-seller" });
			const one = await seller.call("messages.send", { conversationId, clientMsgId: "ed-a", type: "text", text: "price 100" });
			const two = await seller.call("messages.send", { conversationId, clientMsgId: "ed-b", type: "text", text: "pickup Monday" });
			await new Promise((r) => setTimeout(r, 200));
			await seller.call("messages.edit", { conversationId, seq: one.seq, text: "price 90" });
			for (let i = 0; i < 50 && updates.length < 1; i++) await new Promise((r) => setTimeout(r, 20));
			assert.deepEqual(updates, [{ seq: one.seq, text: "price 90", changeSeq: 1 }], "live");

			buyer.socket.disconnect();
			await seller.call("messages.edit", { conversationId, seq: one.seq, text: "price 80" });
			await seller.call("messages.edit", { conversationId, seq: two.seq, text: "pickup Tuesday" });
			await seller.call("messages.edit", { conversationId, seq: one.seq, text: "price 75" });
			const synced = new Promise((resolve) => buyer.once("synced", resolve));
			buyer.socket.connect();
			await synced;
			assert.deepEqual(updates.slice(1), [
				{ seq: two.seq, text: "pickup Tuesday", changeSeq: 3 },
				{ seq: one.seq, text: "price 75", changeSeq: 4 },
			], "caught up: the final state of each, once");
			const again = new Promise((resolve) => buyer.once("synced", resolve));
			buyer.socket.disconnect();
			buyer.socket.connect();
			await again;
			assert.equal(updates.length, 3, "nothing repeated on the next catch-up");
		} finally {
			buyer.close();
			seller.close();
		}
	});
});
