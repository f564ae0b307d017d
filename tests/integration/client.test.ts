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
});
